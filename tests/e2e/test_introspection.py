"""Opaque tokens through a real Envoy: authz introspects them (RFC 7662) at a local endpoint
with HTTP Basic client authentication, caches the answers, and refuses with 401
`invalid_token` whatever is not active now, including an endpoint that has stopped."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import http
from tests.support.envoy import patient
from tests.support.introspection_server import CLIENT_SECRET, IntrospectionServer
from tests.unit.helpers import write_policy

# The route /jwt/ in envoy.yaml selects the policy named `jwt`.
POLICY = """
identity:
  introspection:
    - endpoint: {url}
      client_id: authz
      client_secret_file: introspect-secret
      cache_seconds: 60
      timeout_seconds: 0.1
policies:
  - name: jwt
    require_identity: true
    rules:
      - name: introspected
        when: identity.method == "introspection" && "reports:read" in identity.scopes
        effect: allow
        headers: {{x-authz-subject: identity.subject}}
        remove_headers: [authorization]
"""


@pytest.fixture
def endpoint() -> Iterator[IntrospectionServer]:
    server = IntrospectionServer()
    yield server
    server.stop()


@pytest.fixture
def stack(
    tmp_path: Path,
    endpoint: IntrospectionServer,
    upstream: Any,
    envoy_factory: Any,
    authz_factory: Any,
) -> Any:
    (tmp_path / "introspect-secret").write_text(CLIENT_SECRET + "\n")
    authz = authz_factory(write_policy(tmp_path, POLICY.format(url=endpoint.url)))
    return envoy_factory(authz.port, upstream.port), upstream


def get(envoy: Any, token: str) -> tuple[int, dict[str, str], bytes]:
    return http(envoy.url("/jwt/report"), headers={"authorization": f"Bearer {token}"})


def test_introspection_through_envoy(stack: Any, endpoint: IntrospectionServer) -> None:
    envoy, upstream = stack
    now = int(time.time())
    endpoint.tokens["active-token"] = {
        "active": True,
        "sub": "svc-reporting",
        "scope": "reports:read",
        "exp": now + 600,
    }
    endpoint.tokens["expired-token"] = {"active": True, "scope": "reports:read", "exp": now - 5}
    endpoint.tokens["inactive-token"] = {"active": False}

    # active: authenticated by introspection, the upstream learns the subject
    status, _, body = get(envoy, "active-token")
    assert status == 200, body
    assert json.loads(body)["headers"]["x-authz-subject"] == "svc-reporting"
    assert endpoint.auth[-1] == IntrospectionServer.basic()

    # inactive, expired and unknown tokens: 401 invalid_token, naming why
    for token, reason in (
        ("inactive-token", "inactive_token"),
        ("expired-token", "expired"),
        ("never-issued", "inactive_token"),
    ):
        status, headers, _ = get(envoy, token)
        assert status == 401, token
        assert headers["www-authenticate"] == (
            f'Bearer realm="authz", error="invalid_token", error_description="{reason}"'
        )

    # cached: asking again costs the endpoint nothing (positive and negative answers)
    asked = len(endpoint.hits)
    assert get(envoy, "active-token")[0] == 200
    assert get(envoy, "inactive-token")[0] == 401
    assert len(endpoint.hits) == asked == 4

    # the endpoint stops: a token it never judged is refused; the cached one still passes
    endpoint.stop()
    endpoint.tokens["new-token"] = {"active": True, "scope": "reports:read"}
    status, headers, _ = get(envoy, "new-token")
    assert status == 401
    assert 'error_description="introspection_failed"' in headers["www-authenticate"]
    assert get(envoy, "active-token")[0] == 200
    assert [r["path"] for r in upstream.requests()] == ["/jwt/report"] * 3


def test_a_hanging_endpoint_is_a_401_and_other_checks_go_on_meanwhile(
    tmp_path: Path,
    endpoint: IntrospectionServer,
    upstream: Any,
    envoy_factory: Any,
    authz_factory: Any,
) -> None:
    """The grpc.aio worker awaits the call without blocking: while one check waits on a
    hanging endpoint, another caller is answered; the waiting one ends in 401, not in a
    timeout. The wait is bounded at 5 s here (no check budget, Envoy's deadline 10 s), so
    that "meanwhile" is not a 0.1 s window a loaded machine can miss."""
    (tmp_path / "introspect-secret").write_text(CLIENT_SECRET + "\n")
    policy = POLICY.format(url=endpoint.url).replace("timeout_seconds: 0.1", "timeout_seconds: 5")
    authz = authz_factory(write_policy(tmp_path, policy), extra_args=("--check-budget-ms", "0"))
    envoy = envoy_factory(authz.port, upstream.port, mutate=patient)
    endpoint.tokens["slow-token"] = {"active": True, "scope": "reports:read"}
    endpoint.tokens["fast-token"] = {"active": True, "sub": "fast", "scope": "reports:read"}
    assert get(envoy, "fast-token")[0] == 200  # judged and cached
    endpoint.mode = "hang"
    result: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: result.update(slow=get(envoy, "slow-token")))
    slow.start()
    assert endpoint.wait_hits(2, 120)  # the slow token is at the endpoint, which hangs
    assert get(envoy, "fast-token")[0] == 200
    assert "slow" not in result  # answered while the other check was still waiting
    slow.join(timeout=120)
    status, headers, _ = result["slow"]
    assert status == 401 and "introspection_failed" in headers["www-authenticate"]
    endpoint.release()
    assert [r["path"] for r in upstream.requests()] == ["/jwt/report"] * 2
