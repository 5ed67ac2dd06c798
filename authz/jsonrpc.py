"""A deny on an MCP route, answered in JSON-RPC so the client's session survives.

MCP clients read the answer to a POSTed request as JSON-RPC. A bare HTTP 403 is a transport
failure to them (the official Python SDK 1.x tears the whole session down on it), so on a
policy with `deny_as: jsonrpc` a rule's deny of a JSON-RPC request is sent as HTTP 200 with
the JSON-RPC answer to that request's `id`:

- `jsonrpc`: an error response, `{"jsonrpc": "2.0", "id": ID, "error": {"code": CODE,
  "message": MESSAGE, "data": {"decision_id": ...}}}`; the SDK raises it as that call's
  error and the session goes on;
- `tool_error`: for `tools/call`, a tool result with `isError: true` and the message as its
  text (what MCP asks servers to do for a tool that could not run, so a model reads why and
  can change course); other requests get the error response above.

CODE is the rule's `jsonrpc_code`, by default -32003 ("denied by policy"), from the range
JSON-RPC leaves to servers (-32000 to -32099) and not one an MCP SDK already uses (-32000
connection closed, -32001 request timeout in the TypeScript SDK, -32002 resource not found,
-32042 URL elicitation required). A rule may choose another: any integer outside the range
JSON-RPC reserves (-32768 to -32000), one of its standard codes (-32700 parse error, -32600
invalid request, -32601 method not found, -32602 invalid params, -32603 internal error), or
one from the server range.

A batch gets a list with one answer per request in it; notifications and responses the
client sent get none. What is not a JSON-RPC request with a valid id (the GET event stream,
the DELETE, a notification, a response, a body that is not JSON-RPC) keeps the HTTP deny,
and so does a batch over the `mcp` view's limit, an authentication failure (401 with a
challenge, which the MCP authorization spec requires) and every deny that is not a rule's
or the policy default's (a rule with `status: 401` included).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from authz.mcp import MAX_CALLS, mcp_view

HTTP, JSONRPC, TOOL_ERROR = "http", "jsonrpc", "tool_error"
DENY_AS = (HTTP, JSONRPC, TOOL_ERROR)
DEFAULT_CODE = -32003
STANDARD_CODES = frozenset({-32700, -32600, -32601, -32602, -32603})


def valid_code(code: Any) -> bool:
    """A code a rule may send: an integer outside JSON-RPC's reserved range, a standard
    code, or one from the server range."""
    if isinstance(code, bool) or not isinstance(code, int):
        return False
    return not -32768 <= code <= -32000 or code in STANDARD_CODES or -32099 <= code <= -32000


def _answer(call: dict[str, Any], mode: str, code: int, message: str, decision_id: str) -> dict:
    if mode == TOOL_ERROR and call["method"] == "tools/call":
        result = {
            "content": [{"type": "text", "text": message}],
            "isError": True,
            "_meta": {"decision_id": decision_id},
        }
        return {"jsonrpc": "2.0", "id": call["id"], "result": result}
    error = {"code": code, "message": message, "data": {"decision_id": decision_id}}
    return {"jsonrpc": "2.0", "id": call["id"], "error": error}


def deny_reply(
    method: str,
    headers: Mapping[str, str],
    body: Any,
    mode: str,
    code: int,
    message: str,
    decision_id: str,
) -> str | None:
    """The JSON-RPC body answering the requests of a denied request (its HTTP method,
    headers and parsed body), or None when there is none to answer and the deny stays HTTP
    (a batch over the view's limit too: its requests past the limit could not be answered)."""
    if mode == HTTP or (isinstance(body, list) and len(body) > MAX_CALLS):
        return None
    view = mcp_view(method, headers, body)
    answers = [
        _answer(c, mode, code, message, decision_id)
        for c in view["calls"]
        if c["kind"] == "request" and c["id"] is not None
    ]
    if not answers:
        return None
    return json.dumps(answers if view["is_batch"] else answers[0], ensure_ascii=False)
