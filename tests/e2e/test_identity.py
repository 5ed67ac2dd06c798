"""Identity end to end through a real Envoy with the shipped config and example policies."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.client import http
from tests.support.tokens import demo_token

DEMO_API_KEY = "demo-api-key-do-not-use-in-production"


@pytest.mark.parametrize("prefix", ["/jwt/", "/jwt-authn/"])
def test_valid_jwt_reaches_upstream_with_subject(stack: Any, prefix: str) -> None:
    envoy, upstream = stack
    status, _, body = http(
        envoy.url(f"{prefix}profile"), headers={"authorization": f"Bearer {demo_token()}"}
    )
    assert status == 200, body
    seen = json.loads(body)["headers"]
    assert seen["x-authz-subject"] == "agent-7"
    assert seen["x-authz-method"] == ("jwt" if prefix == "/jwt/" else "jwt_authn")
    assert "authorization" not in seen  # the policy strips the credential
    assert upstream.requests() == [{"method": "GET", "path": f"{prefix}profile"}]


def test_expired_jwt_gets_401_naming_the_reason(stack: Any) -> None:
    envoy, upstream = stack
    expired = demo_token(exp=int(time.time()) - 3600)
    status, headers, body = http(
        envoy.url("/jwt/profile"), headers={"authorization": f"Bearer {expired}"}
    )
    assert status == 401
    assert 'error="invalid_token"' in headers["www-authenticate"]
    assert 'error_description="expired"' in headers["www-authenticate"]
    assert json.loads(body)["error"] == "authentication required: expired"
    status, headers, _ = http(envoy.url("/jwt/profile"))
    assert status == 401 and "missing_credentials" in headers["www-authenticate"]
    assert upstream.requests() == []


def test_expired_jwt_is_refused_by_jwt_authn_in_front(stack: Any) -> None:
    envoy, upstream = stack
    expired = demo_token(exp=int(time.time()) - 3600)
    status, _, body = http(
        envoy.url("/jwt-authn/profile"), headers={"authorization": f"Bearer {expired}"}
    )
    assert status == 401 and b"expired" in body.lower()
    assert http(envoy.url("/jwt-authn/profile"))[0] == 401
    assert upstream.requests() == []


def test_api_key_route(stack: Any) -> None:
    envoy, upstream = stack
    status, _, body = http(envoy.url("/apikey/deploy"), headers={"x-api-key": DEMO_API_KEY})
    assert status == 200, body
    seen = json.loads(body)["headers"]
    assert seen["x-authz-subject"] == "demo-ci-bot" and "x-api-key" not in seen
    status, headers, _ = http(envoy.url("/apikey/deploy"), headers={"x-api-key": "guess"})
    assert status == 401 and "unknown_api_key" in headers["www-authenticate"]
    # a valid JWT is not an API key: the policy wants method api_key
    status, _, _ = http(
        envoy.url("/apikey/deploy"), headers={"authorization": f"Bearer {demo_token()}"}
    )
    assert status == 403
    assert [r["path"] for r in upstream.requests()] == ["/apikey/deploy"]
