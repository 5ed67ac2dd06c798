"""The `mcp` attribute: one HTTP exchange of MCP's streamable-HTTP transport, as policies see it.

MCP over HTTP is one endpoint used four ways: a POST carries a JSON-RPC message (a request,
a notification, or a response the client sends back to a server-initiated request), or a
batch of them; a GET opens the server's event stream; a DELETE ends the session. `kind`
says which (`request`, `notification`, `response`, `stream`, `terminate`; `""` for anything
else: another HTTP method, a POST whose body is not JSON-RPC).

For a single message the top-level fields describe it; for a batch they describe the first
message and `calls` lists every one, so a policy can require that all of them are allowed
(`mcp.calls.all(c, c.tool in [...])`). A batch larger than the limit is not cut silently:
`error` says so.

Strict, like the `llm` view: a field holds exactly what the server would act on, or its
empty value with `error` naming the field. An `id` that is a bool, a float, null or an
object, a `params.name` that is not a string, `arguments` that are not an object: each is
an error, never coerced (a server that coerces `1.0` to `1` would answer a different
request than the one a policy looked at). Policies should deny on a non-empty `error`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from authz.celtypes import BOOL, DYN, STRING, list_of, record

MAX_CALLS = 100

REQUEST, NOTIFICATION, RESPONSE = "request", "notification", "response"
STREAM, TERMINATE = "stream", "terminate"

SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"

CALL = record(
    "mcp call",
    method=STRING,
    kind=STRING,
    id=DYN,
    tool=STRING,
    arguments=DYN,
    resource=STRING,
    prompt=STRING,
    is_notification=BOOL,
)
TYPE = record(
    "mcp",
    **dict(CALL.fields or ()),
    calls=list_of(CALL),
    is_batch=BOOL,
    error=STRING,
    session_id=STRING,
    protocol_version=STRING,
)
FIELDS = TYPE.field_names

EMPTY_CALL: dict[str, Any] = {
    "method": "",
    "kind": "",
    "id": None,
    "tool": "",
    "arguments": {},
    "resource": "",
    "prompt": "",
    "is_notification": False,
}

# The MCP spec: a session id is visible ASCII; a protocol version is a date.
_SESSION_ID = re.compile(r"^[\x21-\x7e]+$")
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Methods whose params name a resource by `uri` (resources/list and templates/list do not).
_URI_METHODS = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    """A JSON-RPC id MCP accepts: a string or an integer (never null, bool or float)."""
    return isinstance(value, str) or _is_int(value)


def _name(params: dict[str, Any], key: str, problems: list[str]) -> str:
    """A required non-empty string param; '' and a field-named problem otherwise."""
    value = params.get(key)
    if isinstance(value, str) and value:
        return value
    if key not in params:
        problems.append(f"params.{key}: missing")
    else:
        problems.append(f"params.{key}: {'empty' if value == '' else 'not a string'}")
    return ""


def _arguments(params: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    if "arguments" not in params:
        return {}
    value = params["arguments"]
    if isinstance(value, dict):
        return value
    problems.append("params.arguments: not an object")
    return {}


def _request(message: dict[str, Any], call: dict[str, Any], problems: list[str]) -> None:
    """The method-specific fields of a request or notification."""
    method = call["method"]
    params: Any = message.get("params", {})
    if not isinstance(params, dict):
        problems.append("params: not an object")
        return
    if method == "tools/call":
        call["tool"] = _name(params, "name", problems)
        call["arguments"] = _arguments(params, problems)
    elif method == "prompts/get":
        call["prompt"] = _name(params, "name", problems)
        call["arguments"] = _arguments(params, problems)
    elif method in _URI_METHODS:
        call["resource"] = _name(params, "uri", problems)


def _response(message: dict[str, Any], problems: list[str]) -> None:
    """A response must carry exactly one of `result` (an object) and `error`."""
    if ("result" in message) == ("error" in message):
        problems.append("a response needs exactly one of result and error")
    elif "result" in message and not isinstance(message["result"], dict):
        problems.append("result: not an object")
    elif "error" in message:
        error = message["error"]
        if not isinstance(error, dict):
            problems.append("error: not an object")
        elif not _is_int(error.get("code")):
            problems.append("error.code: not an integer")
        elif not isinstance(error.get("message"), str):
            problems.append("error.message: not a string")


def _call(message: Any) -> tuple[dict[str, Any], list[str]]:
    """One JSON-RPC message as a call record, and its problems (field-named)."""
    call = dict(EMPTY_CALL)
    if not isinstance(message, dict):
        return call, ["not a JSON-RPC message (an object)"]
    if message.get("jsonrpc") != "2.0":
        return call, ['jsonrpc: not "2.0"']
    problems: list[str] = []
    if "id" in message:
        if _is_id(message["id"]):
            call["id"] = message["id"]
        else:
            problems.append("id: not a string or an integer")
    if "method" in message:
        method = message["method"]
        if not isinstance(method, str) or not method:
            return call, [*problems, "method: not a string"]
        if "result" in message or "error" in message:
            problems.append("a message with a method cannot carry result or error")
        call["method"] = method
        call["kind"] = REQUEST if "id" in message else NOTIFICATION
        call["is_notification"] = "id" not in message
        _request(message, call, problems)
    elif "result" in message or "error" in message:
        call["kind"] = RESPONSE
        if "id" not in message:
            problems.append("id: missing from a response")
        _response(message, problems)
    else:
        problems.append("method: missing (neither a request nor a response)")
    return call, problems


def _headers(headers: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    session = headers.get(SESSION_HEADER, "")
    version = headers.get(VERSION_HEADER, "")
    if session and not _SESSION_ID.match(session):
        problems.append(f"{SESSION_HEADER}: not visible ASCII")
        session = ""
    if version and not _VERSION.match(version):
        problems.append(f"{VERSION_HEADER}: not a YYYY-MM-DD version")
        version = ""
    return {"session_id": session, "protocol_version": version}


def _view(
    top: dict[str, Any], calls: list[dict[str, Any]], batch: bool, problems: list[str]
) -> dict[str, Any]:
    return {**top, "calls": calls, "is_batch": batch, "error": "; ".join(problems)}


def mcp_view(method: str, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
    """The `mcp` attribute for an HTTP request (method, lower-cased headers, parsed body).
    A POST whose body is not JSON-RPC at all (not JSON, or an object without `jsonrpc`) is
    not MCP: kind "" and no error; one that claims to be and is malformed has an error."""
    problems: list[str] = []
    transport = _headers(headers, problems)
    if method in ("GET", "DELETE"):
        kind = STREAM if method == "GET" else TERMINATE
        top = {**EMPTY_CALL, "kind": kind, **transport}
        return _view(top, [], False, problems)
    empty = {**EMPTY_CALL, **transport}
    if method != "POST":
        return _view(empty, [], False, problems)
    if isinstance(body, list):
        if not body:
            return _view(empty, [], True, [*problems, "empty batch"])
        if len(body) > MAX_CALLS:
            problems.append(f"batch of {len(body)} calls exceeds {MAX_CALLS}")
        calls = []
        for index, message in enumerate(body[:MAX_CALLS]):
            call, found = _call(message)
            calls.append(call)
            problems.extend(f"calls[{index}]: {p}" for p in found)
        return _view({**calls[0], **transport}, calls, True, problems)
    if isinstance(body, dict) and "jsonrpc" in body:
        call, found = _call(body)
        return _view({**call, **transport}, [call], False, problems + found)
    return _view(empty, [], False, problems)
