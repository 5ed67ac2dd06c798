"""The `mcp` view: the streamable-HTTP transport (requests, notifications, responses, the GET
stream, the DELETE), batches, and malformed JSON-RPC named field by field."""

from __future__ import annotations

from typing import Any

import pytest

from authz.celtypes import BOOL, DYN, STRING
from authz.mcp import FIELDS, MAX_CALLS, TYPE, mcp_view

SESSION = {"mcp-session-id": "3f0c9e7a-1", "mcp-protocol-version": "2025-06-18"}


def call(method: str, params: dict[str, Any] | None = None, id_: Any = 1) -> dict[str, Any]:
    """A JSON-RPC 2.0 request."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id_ is not None:
        message["id"] = id_
    return message


def post(body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The view of a POST carrying `body`."""
    return mcp_view("POST", headers or {}, body)


def test_tools_call_with_arguments() -> None:
    view = post(call("tools/call", {"name": "read_file", "arguments": {"path": "/etc"}}))
    assert (view["method"], view["id"], view["tool"]) == ("tools/call", 1, "read_file")
    assert view["kind"] == "request" and view["is_notification"] is False
    assert view["arguments"] == {"path": "/etc"}
    assert view["is_batch"] is False and len(view["calls"]) == 1 and view["error"] == ""


def test_notifications_resources_and_prompts() -> None:
    note = post(call("notifications/initialized", id_=None))
    assert note["is_notification"] is True and note["id"] is None
    assert note["kind"] == "notification" and note["error"] == ""
    resource = post(call("resources/read", {"uri": "file:///secrets.txt"}, "r-1"))
    assert (resource["resource"], resource["id"]) == ("file:///secrets.txt", "r-1")
    listing = post(call("resources/list", {}, 2))
    assert listing["resource"] == "" and listing["error"] == ""
    prompt = post(call("prompts/get", {"name": "summarise", "arguments": {"x": "1"}}))
    assert (prompt["prompt"], prompt["arguments"]) == ("summarise", {"x": "1"})


def test_a_response_the_client_sends_back() -> None:
    answer = {"jsonrpc": "2.0", "id": 0, "result": {"action": "accept", "content": {"ok": True}}}
    view = post(answer, SESSION)
    assert (view["kind"], view["id"], view["method"], view["error"]) == ("response", 0, "", "")
    refusal = {"jsonrpc": "2.0", "id": "s-1", "error": {"code": -1, "message": "user declined"}}
    assert post(refusal)["kind"] == "response" and post(refusal)["error"] == ""


def test_stream_terminate_and_session_headers() -> None:
    stream = mcp_view("GET", SESSION, None)
    assert (stream["kind"], stream["calls"], stream["error"]) == ("stream", [], "")
    assert stream["session_id"] == "3f0c9e7a-1" and stream["protocol_version"] == "2025-06-18"
    end = mcp_view("DELETE", SESSION, None)
    assert (end["kind"], end["session_id"], end["error"]) == ("terminate", "3f0c9e7a-1", "")
    other = mcp_view("PUT", {}, call("tools/call", {"name": "x"}))
    assert other["kind"] == "" and other["calls"] == []
    bad = mcp_view("GET", {"mcp-session-id": "a b", "mcp-protocol-version": "v2"}, None)
    assert bad["session_id"] == "" and bad["protocol_version"] == ""
    assert "mcp-session-id: not visible ASCII" in bad["error"]
    assert "mcp-protocol-version: not a YYYY-MM-DD version" in bad["error"]


def test_batch_lists_every_call() -> None:
    view = post(
        [
            call("tools/call", {"name": "search"}, 1),
            call("tools/call", {"name": "delete_repo", "arguments": {"r": "x"}}, 2),
            {"jsonrpc": "2.0", "id": 9, "result": {}},
        ]
    )
    assert view["is_batch"] is True and view["tool"] == "search"
    assert [c["tool"] for c in view["calls"]] == ["search", "delete_repo", ""]
    assert [c["kind"] for c in view["calls"]] == ["request", "request", "response"]


def test_batch_bomb_is_flagged_not_silently_cut() -> None:
    view = post([call("tools/call", {"name": "search"}, i) for i in range(10_000)])
    assert len(view["calls"]) == MAX_CALLS
    assert "batch of 10000 calls exceeds 100" in view["error"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "empty batch"),
        ({"jsonrpc": "1.0", "method": "x"}, 'jsonrpc: not "2.0"'),
        ({"jsonrpc": "2.0", "id": 1}, "method: missing"),
        ({"jsonrpc": "2.0", "id": 1, "method": 7}, "method: not a string"),
        (call("tools/list", id_=True), "id: not a string or an integer"),
        (call("tools/list", id_=1.0), "id: not a string or an integer"),
        (call("tools/list", id_=None) | {"id": None}, "id: not a string or an integer"),
        (call("tools/list", id_={"n": 1}), "id: not a string or an integer"),
        (call("tools/call", {"name": "t", "arguments": ["a"]}), "params.arguments: not an object"),
        (call("tools/call", {"name": "t", "arguments": "{}"}), "params.arguments: not an object"),
        (call("tools/call", {"arguments": {}}), "params.name: missing"),
        (call("tools/call", {"name": 5}), "params.name: not a string"),
        (call("tools/call", {"name": ["read_ticket"]}), "params.name: not a string"),
        (call("tools/call", {"name": ""}), "params.name: empty"),
        (call("prompts/get", {"name": None}), "params.name: not a string"),
        (call("resources/read", {"uri": 1}), "params.uri: not a string"),
        (call("tools/call", ["read_ticket", {}]), "params: not an object"),
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "result": {}}, "cannot carry result"),
        ({"jsonrpc": "2.0", "result": {}}, "id: missing from a response"),
        ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}}, "exactly one of"),
        ({"jsonrpc": "2.0", "id": 1, "result": [1]}, "result: not an object"),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": ""}}, "error.code"),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": 1}}, "error.message: not a string"),
        ([call("tools/call", {"name": "ok"}), "junk"], "calls[1]: not a JSON-RPC message"),
        ([call("tools/call", {"name": "ok"}), call("x", id_=False)], "calls[1]: id: not a"),
    ],
)
def test_malformed_messages_name_the_field(body: Any, problem: str) -> None:
    view = post(body)
    assert problem in view["error"], view["error"]


def test_wrong_typed_values_are_not_coerced() -> None:
    view = post(call("tools/call", {"name": ["read_ticket"], "arguments": [1]}, 1.0))
    assert (view["id"], view["tool"], view["arguments"]) == (None, "", {})
    assert view["kind"] == "request" and view["method"] == "tools/call"


def test_not_jsonrpc_is_not_mcp() -> None:
    for body in ({"model": "x"}, None, "text", 5):
        view = post(body)
        assert (view["kind"], view["method"], view["calls"], view["error"]) == ("", "", [], "")


def test_the_declared_type_names_every_field() -> None:
    assert TYPE.field_names == FIELDS
    view = post(call("tools/call", {"name": "t"}), SESSION)
    assert set(view) == set(FIELDS)
    assert set(view["calls"][0]) == set(TYPE.field("calls").elem.field_names)  # type: ignore[union-attr]
    assert TYPE.field("kind") == STRING and TYPE.field("is_batch") == BOOL
    assert TYPE.field("id") == DYN and TYPE.field("arguments") == DYN
    for method in ("GET", "DELETE", "PUT"):
        assert set(mcp_view(method, {}, None)) == set(FIELDS)
