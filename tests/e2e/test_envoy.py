"""End to end through a real Envoy 1.40: client -> Envoy -> ext_authz (authz) -> upstream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import http
from tests.support.paths import EXAMPLE_POLICY
from tests.unit.helpers import write_policy


@pytest.fixture
def stack(upstream, envoy_factory, authz_factory) -> Any:
    """Envoy in front of authz (example policies) and the echo upstream."""
    authz = authz_factory(EXAMPLE_POLICY)
    envoy = envoy_factory(authz.port, upstream.port)
    return envoy, authz, upstream


def test_allow_reaches_upstream_with_the_policy_header(stack: Any) -> None:
    envoy, _, upstream = stack
    status, _, body = http(
        envoy.url("/team/report"), headers={"x-team": "ml", "x-authz-team": "spoofed"}
    )
    assert status == 200
    echoed = json.loads(body)
    assert echoed["path"] == "/team/report"
    # set by the policy, overwriting what the client tried to send
    assert echoed["headers"]["x-authz-team"] == "ml"
    assert upstream.requests() == [{"method": "GET", "path": "/team/report"}]


def test_deny_returns_policy_status_and_json_body(stack: Any) -> None:
    envoy, _, upstream = stack
    status, headers, body = http(envoy.url("/team/report"), headers={"x-team": "sales"})
    assert status == 403
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    # nothing internal reaches the client: no policy or rule name, only the error and the id
    assert set(payload) == {"error", "decision_id"} and payload["error"] == "access denied"
    assert len(payload["decision_id"]) == 32
    assert upstream.requests() == []


def test_body_based_deny(stack: Any) -> None:
    envoy, _, upstream = stack
    status, _, body = http(
        envoy.url("/upload/doc"), "POST", b"draft TOP-SECRET plan", {"content-type": "text/plain"}
    )
    assert status == 422
    assert json.loads(body) | {"decision_id": ""} == {
        "error": "body carries a forbidden marker",
        "decision_id": "",
    }
    status, _, body = http(
        envoy.url("/upload/doc"),
        "POST",
        b'{"marker": "forbidden"}',
        {"content-type": "application/json"},
    )
    assert (status, json.loads(body)["error"]) == (422, "marker not allowed")
    status, _, _ = http(
        envoy.url("/upload/doc"), "POST", b"{broken", {"content-type": "application/json"}
    )
    assert status == 400
    status, _, body = http(
        envoy.url("/upload/doc"),
        "POST",
        b'{"marker": "fine"}',
        {"content-type": "application/json"},
    )
    assert status == 200 and json.loads(body)["body"] == '{"marker": "fine"}'
    assert [r["path"] for r in upstream.requests()] == ["/upload/doc"]


def test_route_context_selects_the_policy(stack: Any) -> None:
    envoy, _, _ = stack
    # the same request is allowed on the public route and denied on the team route
    assert http(envoy.url("/public/x"))[0] == 200
    assert http(envoy.url("/team/x"))[0] == 403
    # without route context the policy whose `match` is true decides
    assert http(envoy.url("/healthz"))[0] == 200
    status, _, body = http(envoy.url("/elsewhere"))
    assert (status, json.loads(body)["error"]) == (403, "access denied")


def test_service_down_means_envoy_denies(stack: Any) -> None:
    envoy, authz, upstream = stack
    assert http(envoy.url("/public/before"))[0] == 200
    authz.proc.kill()
    authz.proc.wait(10)
    status, _, _ = http(envoy.url("/public/after"))
    assert status == 403
    assert [r["path"] for r in upstream.requests()] == ["/public/before"]


def test_cel_runtime_error_denies(upstream, envoy_factory, authz_factory, tmp_path: Path) -> None:
    policy = write_policy(
        tmp_path,
        """
        policies:
          - name: public
            rules:
              - name: needs-header
                when: request.headers["x-required"] == "yes"
                effect: allow
    """,
    )
    authz = authz_factory(policy)
    envoy = envoy_factory(authz.port, upstream.port)
    status, _, body = http(envoy.url("/public/x"))
    assert status == 403
    assert json.loads(body)["error"] == "access denied"  # the CEL error stays in the log
    assert http(envoy.url("/public/x"), headers={"x-required": "yes"})[0] == 200
    assert [r["path"] for r in upstream.requests()] == ["/public/x"]


def test_large_body_arrives_truncated_and_policy_sees_it(
    upstream, envoy_factory, authz_factory, tmp_path: Path
) -> None:
    policy = write_policy(
        tmp_path,
        """
        policies:
          - name: upload
            rules:
              - name: partial
                when: body.truncated
                effect: deny
                status: 413
                message: body too large to inspect
              - name: rest
                when: "true"
                effect: allow
    """,
    )
    authz = authz_factory(policy)
    envoy = envoy_factory(authz.port, upstream.port)
    assert http(envoy.url("/upload/big"), "POST", b"x" * 200_000)[0] == 413
    assert http(envoy.url("/upload/small"), "POST", b"x" * 1000)[0] == 200
