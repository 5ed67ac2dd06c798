"""The `mcp` attribute: MCP (JSON-RPC 2.0) requests, single or batched, with tool arguments.

For a single request the top-level fields describe it; for a batch they describe the first
call and `calls` lists every call, so a policy can require that all of them are allowed
(`mcp.calls.all(c, c.tool in [...])`). A batch larger than the limit is not cut silently:
`error` says so, and policies should deny on a non-empty `error`.
"""

from __future__ import annotations

from typing import Any

MAX_CALLS = 100

EMPTY_CALL: dict[str, Any] = {
    "method": "",
    "id": None,
    "tool": "",
    "arguments": {},
    "resource": "",
    "prompt": "",
    "is_notification": False,
}
FIELDS = (*EMPTY_CALL, "calls", "is_batch", "error")


def _call(message: Any) -> tuple[dict[str, Any], str]:
    """One JSON-RPC request as a call record, and a problem ('' when none)."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return dict(EMPTY_CALL), "not a JSON-RPC 2.0 request"
    method = message.get("method")
    if not isinstance(method, str):
        return dict(EMPTY_CALL), "a JSON-RPC request without a method"
    params = message.get("params")
    params = params if isinstance(params, dict) else {}
    call = dict(EMPTY_CALL)
    call["method"] = method
    raw_id = message.get("id")
    call["id"] = raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    call["is_notification"] = "id" not in message
    problem = ""
    if method == "tools/call":
        name = params.get("name")
        call["tool"] = name if isinstance(name, str) else ""
        arguments = params.get("arguments", {})
        if isinstance(arguments, dict):
            call["arguments"] = arguments
        else:
            problem = "tools/call arguments are not an object"
        if not call["tool"]:
            problem = "tools/call without a tool name"
    elif method.startswith("resources/"):
        uri = params.get("uri")
        call["resource"] = uri if isinstance(uri, str) else ""
    elif method == "prompts/get":
        name = params.get("name")
        call["prompt"] = name if isinstance(name, str) else ""
        arguments = params.get("arguments", {})
        call["arguments"] = arguments if isinstance(arguments, dict) else {}
    return call, problem


def mcp_view(body: Any) -> dict[str, Any]:
    """The `mcp` attribute for a parsed body (method "" when it is not JSON-RPC)."""
    if isinstance(body, list):
        if not body:
            return {**EMPTY_CALL, "calls": [], "is_batch": True, "error": "empty batch"}
        problems = []
        if len(body) > MAX_CALLS:
            problems.append(f"batch of {len(body)} calls exceeds {MAX_CALLS}")
        calls = []
        for message in body[:MAX_CALLS]:
            call, problem = _call(message)
            calls.append(call)
            if problem and problem not in problems:
                problems.append(problem)
        return {**calls[0], "calls": calls, "is_batch": True, "error": "; ".join(problems)}
    if isinstance(body, dict) and "jsonrpc" in body:
        call, problem = _call(body)
        return {**call, "calls": [call], "is_batch": False, "error": problem}
    return {**EMPTY_CALL, "calls": [], "is_batch": False, "error": ""}
