"""MCP authorization as an OAuth 2.1 resource server: the RFC 9728 metadata document,
`resource_metadata` in every 401 challenge, RFC 8707 audience binding, insufficient_scope
(RFC 6750 3.1), and the config keys, each refused at load when missing, mistyped or twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authz.errors import ConfigError
from authz.policy.compiler import CompiledConfig, load
from authz.response import to_check_response
from tests.support.tokens import ISSUER, jwks, mint, rsa_key
from tests.unit.helpers import ENGINES, decide_request, write_policy

RESOURCE = "https://mcp.example.com/mcp"
METADATA_URL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
KEY = rsa_key()

POLICY = """
identity:
  jwt:
    - issuer: https://idp.example.com
      jwks_file: jwks.json
  protected_resource:
    resource: https://mcp.example.com/mcp
    authorization_servers: [https://idp.example.com]
    scopes_supported: [tools:read, tools:write]
policies:
  - name: mcp
    require_identity: true
    deny_as: jsonrpc
    rules:
      - name: needs-write
        when: '!("tools:write" in identity.scopes)'
        effect: deny
        insufficient_scope: [tools:read, tools:write]
      - name: ok
        when: "true"
        effect: allow
  - name: other
    require_identity: true
    rules:
      - name: ok
        when: "true"
        effect: allow
"""


def _config(tmp_path: Path, engine: str = "cel-python", text: str = POLICY) -> CompiledConfig:
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(KEY)))
    return load(str(write_policy(tmp_path, text)), engine)


def _ask(config: CompiledConfig, path: str, token: str | None = None, method: str = "POST") -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    policy = "mcp" if path.startswith("/mcp") else "other"
    request = {
        "method": method,
        "path": path,
        "headers": {"content-type": "application/json", **headers},
        "body": json.dumps(body),
        "context": {"policy": policy},
    }
    return decide_request(config, request)


def _challenge(decision: Any) -> str:
    return dict((*decision.headers, *decision.response_headers))["www-authenticate"]


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
)
@pytest.mark.parametrize("engine", ENGINES)
def test_the_metadata_document_is_answered_by_authz(tmp_path: Path, path: str, engine: str) -> None:
    decision = _ask(_config(tmp_path, engine), path, method="GET")
    assert (decision.allowed, decision.status, decision.reason) == (
        False,
        200,
        "resource_metadata",
    )
    assert json.loads(decision.body) == {
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["tools:read", "tools:write"],
        "bearer_methods_supported": ["header"],
    }
    response = to_check_response(decision)
    assert response.denied_response.status.code == 200
    assert json.loads(response.denied_response.body)["resource"] == RESOURCE
    sent = {h.header.key: h.header.value for h in response.denied_response.headers}
    assert sent["content-type"] == "application/json"
    # only a GET (or HEAD) of exactly those paths: a POST there goes through the policies
    assert _ask(_config(tmp_path, engine), path, method="POST").reason != "resource_metadata"


@pytest.mark.parametrize("engine", ENGINES)
def test_every_401_for_the_resource_names_the_metadata_document(
    tmp_path: Path, engine: str
) -> None:
    config = _config(tmp_path, engine)
    missing = _ask(config, "/mcp")
    assert missing.status == 401
    assert _challenge(missing) == (
        'Bearer realm="authz", error_description="missing_credentials", '
        f'resource_metadata="{METADATA_URL}"'
    )
    expired = _ask(config, "/mcp", mint(KEY, aud=RESOURCE, exp=1000))
    assert 'error="invalid_token"' in _challenge(expired)
    assert f'resource_metadata="{METADATA_URL}"' in _challenge(expired)
    # another route is not the protected resource: its challenge names no document
    assert "resource_metadata" not in _challenge(_ask(config, "/other"))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_token_for_another_resource_is_refused_invalid_token(tmp_path: Path, engine: str) -> None:
    config = _config(tmp_path, engine)
    ok = _ask(config, "/mcp", mint(KEY, aud=[RESOURCE, "x"], scope="tools:write"))
    assert ok.allowed, ok.message
    for audience in ("https://other.example.com/mcp", "llm-gateway", None):
        elsewhere = mint(KEY, aud=audience, scope="tools:write")
        refused = _ask(config, "/mcp", elsewhere)
        assert (refused.allowed, refused.status) == (False, 401)
        assert 'error="invalid_token", error_description="bad_audience"' in _challenge(refused)
        # the binding is the resource's: the same token elsewhere is judged as before
        assert _ask(config, "/other", elsewhere).allowed


@pytest.mark.parametrize("engine", ENGINES)
def test_insufficient_scope_is_a_403_with_the_rfc_6750_challenge(
    tmp_path: Path, engine: str
) -> None:
    config = _config(tmp_path, engine)
    decision = _ask(config, "/mcp", mint(KEY, aud=RESOURCE, scope="tools:read"))
    assert (decision.allowed, decision.status, decision.rule) == (False, 403, "needs-write")
    assert _challenge(decision) == (
        'Bearer realm="authz", error="insufficient_scope", scope="tools:read tools:write", '
        f'resource_metadata="{METADATA_URL}"'
    )
    # an HTTP 403 even on a deny_as: jsonrpc policy: the client reads the challenge
    assert not decision.jsonrpc_body
    response = to_check_response(decision)
    assert response.denied_response.status.code == 403


def _issues(tmp_path: Path, text: str) -> list[Any]:
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(KEY)))
    with pytest.raises(ConfigError) as caught:
        load(str(write_policy(tmp_path, text)), "cel-python")
    return caught.value.issues


RESOURCE_SECTION = """identity:
  protected_resource:
    resource: https://mcp.example.com/mcp
    authorization_servers: [https://idp.example.com]
    scopes_supported: [tools:read]
policies:
  - name: p
    rules:
      - name: r
        when: "true"
        effect: deny
        insufficient_scope: [tools:read]
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ("    resource: https://mcp.example.com/mcp\n", "", 2, "resource must be a string"),
        ("https://mcp.example.com/mcp", "http://mcp.example.com/mcp", 3, "https URL"),
        ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp#x", 3, "no query or"),
        ("[https://idp.example.com]", "[]", 4, "non-empty list"),
        ("[https://idp.example.com]", "https://idp.example.com", 4, "non-empty list"),
        ("[https://idp.example.com]", "[https://a.example, https://a.example]", 4, "duplicate"),
        ("scopes_supported: [tools:read]", "scopes_supported: [tools read]", 5, "is not a scope"),
        ("scopes_supported: [tools:read]", "scopes_supported: tools:read", 5, "list of scopes"),
        (
            "    scopes_supported: [tools:read]\n",
            "    scopes_supported: [a]\n    scopes_supported: [b]\n",
            6,
            "duplicate key",
        ),
        ("    scopes_supported:", "    scope_supported:", 5, "did you mean 'scopes_supported'"),
        ("insufficient_scope: [tools:read]", "insufficient_scope: []", 12, "at least one"),
        ("insufficient_scope: [tools:read]", "insufficient_scope:", 12, "list of scopes"),
        ("insufficient_scope: [tools:read]", "insufficient_scope: [a, a]", 12, "duplicate scope"),
        ("insufficient_scope: [tools:read]", 'insufficient_scope: ["a\\"b"]', 12, "not a scope"),
        ("effect: deny", "effect: allow", 12, "applies to a deny"),
        ("effect: deny", "effect: deny\n        status: 401", 13, "answers 403"),
        ("effect: deny", "effect: deny\n        deny_as: jsonrpc", 13, "over HTTP"),
        (
            "        insufficient_scope: [tools:read]\n",
            "        insufficient_scope: [a]\n        insufficient_scope: [b]\n",
            13,
            "duplicate key",
        ),
    ],
)
def test_a_missing_wrong_typed_or_duplicated_setting_is_refused_at_load(
    tmp_path: Path, old: str, new: str, line: int, fragment: str
) -> None:
    """A deny whose challenge or binding the operator asked for never loads half-configured:
    the file is refused with its position (a running server keeps its last good config)."""
    assert old in RESOURCE_SECTION
    issues = _issues(tmp_path, RESOURCE_SECTION.replace(old, new, 1))
    assert any(i.line == line and fragment in i.message for i in issues), [str(i) for i in issues]


def test_a_duplicated_when_or_effect_cannot_turn_a_deny_into_an_allow(tmp_path: Path) -> None:
    text = """policies:
  - name: p
    rules:
      - name: r
        when: "true"
        effect: deny
        effect: allow
"""
    (issue,) = _issues(tmp_path, text)
    assert (issue.line, issue.col) == (7, 9) and "duplicate key 'effect'" in issue.message
