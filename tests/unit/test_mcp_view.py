"""The `mcp` view: single requests, notifications, batches and malformed JSON-RPC."""

from __future__ import annotations

from typing import Any

from authz.mcp import MAX_CALLS, mcp_view


def call(method: str, params: dict[str, Any] | None = None, id_: Any = 1) -> dict[str, Any]:
    """A JSON-RPC 2.0 request."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id_ is not None:
        message["id"] = id_
    return message


def test_tools_call_with_arguments() -> None:
    view = mcp_view(call("tools/call", {"name": "read_file", "arguments": {"path": "/etc"}}))
    assert (view["method"], view["id"], view["tool"]) == ("tools/call", 1, "read_file")
    assert view["arguments"] == {"path": "/etc"} and view["is_notification"] is False
    assert view["is_batch"] is False and len(view["calls"]) == 1 and view["error"] == ""


def test_notifications_resources_and_prompts() -> None:
    note = mcp_view(call("notifications/initialized", id_=None))
    assert note["is_notification"] is True and note["id"] is None
    resource = mcp_view(call("resources/read", {"uri": "file:///secrets.txt"}, "r-1"))
    assert (resource["resource"], resource["id"]) == ("file:///secrets.txt", "r-1")
    prompt = mcp_view(call("prompts/get", {"name": "summarise", "arguments": {"x": "1"}}))
    assert (prompt["prompt"], prompt["arguments"]) == ("summarise", {"x": "1"})


def test_batch_lists_every_call() -> None:
    view = mcp_view(
        [
            call("tools/call", {"name": "search"}, 1),
            call("tools/call", {"name": "delete_repo", "arguments": {"r": "x"}}, 2),
        ]
    )
    assert view["is_batch"] is True and view["tool"] == "search"
    assert [c["tool"] for c in view["calls"]] == ["search", "delete_repo"]


def test_batch_bomb_is_flagged_not_silently_cut() -> None:
    view = mcp_view([call("tools/call", {"name": "search"}, i) for i in range(10_000)])
    assert len(view["calls"]) == MAX_CALLS
    assert "batch of 10000 calls exceeds 100" in view["error"]


def test_malformed_requests_carry_an_error() -> None:
    assert mcp_view([])["error"] == "empty batch"
    assert "not a JSON-RPC 2.0" in mcp_view({"jsonrpc": "1.0", "method": "x"})["error"]
    assert "without a method" in mcp_view({"jsonrpc": "2.0", "id": 1})["error"]
    bad_args = mcp_view(call("tools/call", {"name": "t", "arguments": ["a"]}))
    assert "arguments are not an object" in bad_args["error"]
    no_name = mcp_view(call("tools/call", {"arguments": {}}))
    assert "without a tool name" in no_name["error"]
    mixed = mcp_view([call("tools/call", {"name": "ok"}), "junk"])
    assert "not a JSON-RPC 2.0 request" in mixed["error"]


def test_not_jsonrpc() -> None:
    for body in ({"model": "x"}, None, "text", 5):
        view = mcp_view(body)
        assert view["method"] == "" and view["calls"] == [] and view["error"] == ""
