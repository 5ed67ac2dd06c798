"""`deny_as`: on an MCP route a policy's deny of a JSON-RPC request is that request's JSON-RPC
answer (HTTP 200), so the client's session survives; everything else stays an HTTP deny."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from authz.errors import ConfigError
from authz.jsonrpc import DEFAULT_CODE, valid_code
from authz.policy.compiler import CompiledConfig, load
from authz.response import to_check_response
from tests.unit.helpers import ENGINES, compile_policy, decide_request, write_policy

POLICY = """
cache: {}
policies:
  - name: mcp
    deny_as: jsonrpc
    rules:
      - name: unreadable
        when: mcp.kind == "" || mcp.error != ""
        effect: deny
        status: 400
        jsonrpc_code: -32600
        message: not a well-formed MCP request
      - name: no-auth
        when: '!("authorization" in request.headers)'
        effect: deny
        status: 401
        message: who are you
      - name: unlisted-tool
        when: '!mcp.calls.all(c, c.method != "tools/call" || c.tool in ["search"])'
        effect: deny
        deny_as: tool_error
        message: this agent may not call that tool
      - name: no-prompts
        when: mcp.calls.exists(c, c.method == "prompts/get")
        effect: deny
        jsonrpc_code: 4031
        message: prompts are off
      - name: no-stream
        when: mcp.kind == "stream" && !("mcp-session-id" in request.headers)
        effect: deny
        message: a stream needs a session
      - name: no-resources
        when: mcp.calls.exists(c, c.method.startsWith("resources/"))
        effect: deny
        deny_as: http
        message: resources are off
      - name: ok
        when: mcp.kind != "ping"
        effect: allow
"""


def rpc(method: str, id_: Any = 1, **params: Any) -> dict[str, Any]:
    """A JSON-RPC request (a notification when id_ is None)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if id_ is not None:
        message["id"] = id_
    return message


def ask(config: CompiledConfig, body: Any = None, method: str = "POST", **headers: str) -> Any:
    """Decide a request on the `mcp` route and return (decision, CheckResponse)."""
    request: dict[str, Any] = {
        "method": method,
        "path": "/mcp",
        "headers": {"authorization": "Bearer x", "content-type": "application/json", **headers},
        "context": {"policy": "mcp"},
    }
    if body is not None:
        request["body"] = body
    decision = decide_request(config, request)
    return decision, to_check_response(decision)


def answer(response: Any) -> Any:
    """The HTTP status and JSON body Envoy would send for a denied CheckResponse."""
    denied = response.denied_response
    return denied.status.code, json.loads(denied.body)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_denied_request_is_its_jsonrpc_error(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    decision, response = ask(config, rpc("prompts/get", "p-7", name="leak"))
    assert not decision.allowed and decision.rule == "no-prompts"
    status, body = answer(response)
    assert status == 200
    assert body == {
        "jsonrpc": "2.0",
        "id": "p-7",
        "error": {
            "code": 4031,
            "message": "prompts are off",
            "data": {"decision_id": decision.decision_id},
        },
    }
    headers = {h.header.key: h.header.value for h in response.denied_response.headers}
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_denied_tool_call_is_a_tool_error_result(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    decision, response = ask(config, rpc("tools/call", 3, name="delete_repo", arguments={}))
    status, body = answer(response)
    assert status == 200 and body["id"] == 3 and "error" not in body
    assert body["result"]["isError"] is True
    assert body["result"]["content"] == [
        {"type": "text", "text": "this agent may not call that tool"}
    ]
    assert body["result"]["_meta"] == {"decision_id": decision.decision_id}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_malformed_request_with_an_id_gets_the_rules_code(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    _, response = ask(config, rpc("tools/call", 9, name=["search"]))
    status, body = answer(response)
    assert (status, body["id"], body["error"]["code"]) == (200, 9, -32600)
    assert body["error"]["message"] == "not a well-formed MCP request"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_gets_one_answer_per_request(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    batch = [
        rpc("tools/call", 1, name="search"),
        rpc("notifications/progress", None),
        rpc("tools/call", 2, name="delete_repo"),
        {"jsonrpc": "2.0", "id": 5, "result": {}},
        rpc("tools/list", "l"),
    ]
    _, response = ask(config, batch)
    status, body = answer(response)
    assert status == 200 and [a["id"] for a in body] == [1, 2, "l"]
    assert [a["result"]["isError"] for a in body[:2]] == [True, True]
    assert body[2]["error"]["code"] == DEFAULT_CODE


@pytest.mark.parametrize("engine", ENGINES)
def test_what_is_not_a_request_stays_an_http_deny(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    # A notification has no id to answer; a GET stream, a body that is not JSON-RPC, an
    # id of the wrong type, a rule that says http, a 401: all HTTP.
    cases = [
        (rpc("prompts/get", None, name="x"), "POST", {}, 403),
        (None, "GET", {}, 403),
        ("not json", "POST", {}, 400),
        (rpc("tools/list", True), "POST", {}, 400),
        (rpc("resources/read", 4, uri="file:///x"), "POST", {}, 403),
    ]
    for body, method, headers, status in cases:
        decision, response = ask(config, body, method, **headers)
        assert not decision.allowed and not decision.jsonrpc_body, decision
        assert answer(response)[0] == status, (body, method)
    request = {"method": "POST", "path": "/mcp", "context": {"policy": "mcp"}}
    request["body"] = rpc("tools/list", 1)
    decision = decide_request(config, request)
    assert decision.status == 401 and not decision.jsonrpc_body


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cached_deny_answers_the_new_requests_id(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    first, _ = ask(config, rpc("prompts/get", 1, name="x"))
    again, response = ask(config, rpc("prompts/get", 1, name="x"))
    assert again.cached and again.decision_id != first.decision_id
    body = answer(response)[1]
    assert body["error"]["data"]["decision_id"] == again.decision_id


def test_deny_as_and_jsonrpc_code_are_validated(tmp_path: Path) -> None:
    text = """
    policies:
      - name: mcp
        deny_as: json-rpc
        rules:
          - {name: a, when: 'true', effect: deny, deny_as: tool, jsonrpc_code: -32500}
          - {name: b, when: 'true', effect: deny, jsonrpc_code: "-32001"}
          - {name: c, when: 'true', effect: allow, deny_as: jsonrpc}
    """
    with pytest.raises(ConfigError) as caught:
        load(str(write_policy(tmp_path, text)), "cel-cpp")
    found = {(i.line, i.col, i.message.split(" (")[0]) for i in caught.value.issues}
    assert (3, 14, "policy deny_as must be one of: http, jsonrpc, tool_error") in found
    assert (5, 56, "deny_as must be one of: http, jsonrpc, tool_error") in found
    assert any(line == 5 and col == 62 and "jsonrpc_code" in m for line, col, m in found)
    assert any(line == 6 and col == 47 and "jsonrpc_code" in m for line, col, m in found)
    assert (7, 48, "deny_as applies to a deny, not an allow") in found


def test_valid_codes() -> None:
    assert all(valid_code(c) for c in (-32003, -32099, -32602, -32700, 1, 0, -40000))
    assert not any(valid_code(c) for c in (-32100, -32768, -32500, True, 1.0, "1", None))
