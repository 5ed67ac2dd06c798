"""A rule's 401 reaches the client through Envoy with its Bearer challenge (RFC 9110
11.6.1), naming why the credential was refused; a bare token is malformed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.client import http
from tests.support.paths import DEMO_KEYS
from tests.support.tokens import demo_token
from tests.unit.helpers import write_policy


def test_a_rule_401_carries_the_challenge(
    upstream: Any, envoy_factory: Any, authz_factory: Any, tmp_path: Path
) -> None:
    policy = write_policy(
        tmp_path,
        f"""
        identity:
          jwt:
            - issuer: https://idp.example.com
              audiences: [llm-gateway]
              jwks_file: {(DEMO_KEYS / "jwks.json").resolve()}
              algorithms: [RS256]
        policies:
          - name: public
            rules:
              - name: callers-only
                when: "!identity.authenticated"
                effect: deny
                status: 401
                message: sign in first
              - name: caller
                when: "true"
                effect: allow
        """,
    )
    envoy = envoy_factory(authz_factory(policy).port, upstream.port)
    status, headers, _ = http(envoy.url("/public/x"))
    assert status == 401
    assert headers["www-authenticate"] == (
        'Bearer realm="authz", error_description="missing_credentials"'
    )
    token = demo_token()
    status, headers, _ = http(envoy.url("/public/x"), headers={"authorization": token})
    assert status == 401
    assert headers["www-authenticate"] == (
        'Bearer realm="authz", error="invalid_token", error_description="malformed"'
    )
    status, _, _ = http(envoy.url("/public/x"), headers={"authorization": f"Bearer {token}"})
    assert status == 200
    assert [r["path"] for r in upstream.requests()] == ["/public/x"]
