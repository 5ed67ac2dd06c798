"""MCP authorization (2025-06-18) through a real Envoy with the example pack: /mcp is an
OAuth 2.1 protected resource. authz answers the RFC 9728 metadata document itself (a
denied_response with status 200 that Envoy passes on unchanged), every 401 on /mcp names
that document, a token issued for another resource is refused (RFC 8707), and a token
without the scope a rule needs gets a 403 with the RFC 6750 3.1 challenge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.client import http
from tests.support.tokens import AUDIENCE, demo_token

RESOURCE = "https://mcp.example.com/mcp"
METADATA = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
TOOL_CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "search_tickets", "arguments": {"q": "refund"}},
}


def call(envoy: Any, token: str | None, payload: dict[str, Any] = TOOL_CALL) -> Any:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return http(envoy.url("/mcp"), "POST", json.dumps(payload).encode(), headers)


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
)
def test_the_metadata_document_comes_from_authz_through_envoy(stack: Any, path: str) -> None:
    envoy, upstream = stack
    status, headers, body = http(envoy.url(path))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "resource": RESOURCE,
        "authorization_servers": ["https://idp.example.com"],
        "scopes_supported": ["tools:read", "tools:write"],
        "bearer_methods_supported": ["header"],
    }
    assert upstream.requests() == []  # answered by authz, not by the application


def test_a_401_on_the_resource_names_the_metadata_document(stack: Any) -> None:
    envoy, upstream = stack
    status, headers, _ = call(envoy, None)
    assert status == 401
    assert headers["www-authenticate"] == (
        'Bearer realm="authz", error_description="missing_credentials", '
        f'resource_metadata="{METADATA}"'
    )
    status, headers, _ = call(envoy, "not-a-token")
    assert status == 401 and f'resource_metadata="{METADATA}"' in headers["www-authenticate"]
    assert 'error="invalid_token"' in headers["www-authenticate"]
    # /jwt/ is not the protected resource: its challenge names no document
    status, headers, _ = http(envoy.url("/jwt/me"))
    assert status == 401 and "resource_metadata" not in headers["www-authenticate"]
    assert upstream.requests() == []


def test_a_token_for_another_resource_is_invalid_token(stack: Any) -> None:
    envoy, upstream = stack
    # issued for the LLM gateway only: valid on /jwt/, not passed through to the MCP server
    gateway_only = demo_token(sub="agent-support", aud=AUDIENCE)
    status, headers, _ = call(envoy, gateway_only)
    assert status == 401
    assert headers["www-authenticate"] == (
        'Bearer realm="authz", error="invalid_token", error_description="bad_audience", '
        f'resource_metadata="{METADATA}"'
    )
    assert http(envoy.url("/jwt/me"), headers={"authorization": f"Bearer {gateway_only}"})[0] == 200
    status, _, body = call(envoy, demo_token(sub="agent-support"))
    assert status == 200, body
    assert [r["path"] for r in upstream.requests()] == ["/jwt/me", "/mcp"]


def test_a_missing_scope_is_403_insufficient_scope_with_the_challenge(stack: Any) -> None:
    envoy, upstream = stack
    status, headers, _ = call(envoy, demo_token(sub="agent-support", scope="profile"))
    assert status == 403
    assert headers["www-authenticate"] == (
        'Bearer realm="authz", error="insufficient_scope", scope="tools:read", '
        f'resource_metadata="{METADATA}"'
    )
    delete = {**TOOL_CALL, "params": {"name": "delete_pod", "arguments": {"pod": "db-0"}}}
    status, headers, _ = call(envoy, demo_token(sub="agent-devops", scope="tools:read"), delete)
    assert status == 403
    assert (
        'error="insufficient_scope", scope="tools:read tools:write"' in headers["www-authenticate"]
    )
    assert upstream.requests() == []
