"""A whole MCP session with the official MCP Python SDK through the shipped Envoy config and
example pack: a FastMCP server behind Envoy, the SDK's streamable-HTTP client in front.

initialize, initialized, tools/list, an allowed call, a denied call that reaches the client
as that call's tool error (the session goes on), the GET event stream, a request the server
sends on its own (roots/list) answered by the client, an elicitation answered, and the
DELETE that ends the session; all judged by what the upstream saw, never by sleeping.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.context import RequestContext
from pydantic import FileUrl

from tests.support.sdk_upstream import Event, SdkStack, SdkUpstream
from tests.support.tokens import demo_token


def text_of(result: types.CallToolResult) -> str:
    """The text content of a tool result."""
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def mcp_posts(upstream: SdkUpstream) -> list[Any]:
    """The JSON-RPC messages POSTed to /mcp that reached the upstream."""
    return [r["json"] for r in upstream.requests("/mcp") if r["method"] == "POST"]


def _is(method: str, status: int | None = None, session: str | None = None) -> Any:
    def match(event: Event) -> bool:
        return (
            event["event"] == "response"
            and event["path"] == "/mcp"
            and event["method"] == method
            and (status is None or event["status"] == status)
            and (session is None or event["session"] == session)
        )

    return match


async def session_flow(url: str, token: str, upstream: SdkUpstream) -> dict[str, Any]:
    """Run the session; return what the client saw."""
    seen: dict[str, Any] = {"roots_asked": 0, "elicitations": []}

    async def list_roots(_: RequestContext[ClientSession, Any]) -> types.ListRootsResult:
        seen["roots_asked"] += 1
        root = types.Root(uri=FileUrl("file:///srv/payments"), name="payments")
        return types.ListRootsResult(roots=[root])

    async def elicit(
        _: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        seen["elicitations"].append(params.message)
        return types.ElicitResult(action="accept", content={"include_debug": True})

    # An httpx client with the SDK's own timeouts (300 s to read a stream), and a token.
    headers = {"authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(30, read=300)
    # Bounded: a session the proxy damaged must fail the test, not hang it.
    with anyio.fail_after(120):
        await _session(url, headers, timeout, upstream, list_roots, elicit, seen)
    return seen


async def _session(
    url: str,
    headers: dict[str, str],
    timeout: httpx.Timeout,
    upstream: SdkUpstream,
    list_roots: Any,
    elicit: Any,
    seen: dict[str, Any],
) -> None:
    async with (
        httpx.AsyncClient(headers=headers, timeout=timeout) as client,
        streamable_http_client(url, http_client=client) as (read, write, session_id),
        ClientSession(
            read, write, list_roots_callback=list_roots, elicitation_callback=elicit
        ) as session,
    ):
        init = await session.initialize()  # and the initialized notification
        seen["server"] = init.serverInfo.name
        seen["session"] = session_id()
        # The SDK opens the GET event stream on its own once the session exists.
        await upstream.until(_is("GET", 200, seen["session"]), "the GET event stream")
        seen["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
        pods = await session.call_tool("list_pods", {})  # asks for roots on the GET stream
        seen["pods"] = (pods.isError, text_of(pods))
        denied = await session.call_tool("search_tickets", {"q": "refund"})
        seen["denied"] = (denied.isError, text_of(denied), denied.meta)
        unapproved = await session.call_tool("delete_pod", {"pod": "payments/web-0"})
        seen["unapproved"] = (unapproved.isError, text_of(unapproved))
        logs = await session.call_tool("read_logs", {"pod": "payments/web-0"})  # elicits
        seen["logs"] = (logs.isError, text_of(logs))
        await session.send_ping()  # the session is still usable


def test_a_whole_mcp_session_through_envoy(sdk_stack: SdkStack) -> None:
    envoy, upstream = sdk_stack
    seen = anyio.run(session_flow, envoy.url("/mcp"), demo_token(sub="agent-devops"), upstream)
    assert seen["server"] == "devops" and seen["session"]
    assert {"list_pods", "read_logs", "delete_pod", "search_tickets"} <= set(seen["tools"])
    # The allowed call made the server ask for the client's roots, on the GET stream.
    assert seen["pods"] == (False, "payments/web-0") and seen["roots_asked"] == 1
    # Denied calls are that call's tool error, with the pack's message; the session went on.
    assert seen["denied"][:2] == (True, "this agent may not call that tool")
    assert seen["denied"][2]["decision_id"]
    assert seen["unapproved"] == (True, "delete_* tools need a human approval (x-human-approval)")
    assert seen["elicitations"] == ["Include debug lines for payments/web-0?"]
    assert seen["logs"] == (False, "payments/web-0: INFO started\npayments/web-0: DEBUG cache warm")

    # What reached the server: every kind of message the transport carries, and no denied
    # call. The DELETE is sent as the client closes; wait for the server's answer to it.
    session = seen["session"]
    upstream.wait_for(_is("DELETE", 200, session), "the session's DELETE")
    posts = mcp_posts(upstream)
    methods = [p.get("method") for p in posts if "method" in p]
    assert methods[:3] == ["initialize", "notifications/initialized", "tools/list"]
    called = [p["params"]["name"] for p in posts if p.get("method") == "tools/call"]
    assert called == ["list_pods", "read_logs"]
    answers = [p for p in posts if "method" not in p]  # responses the client sent back
    assert [sorted(a["result"]) for a in answers] == [["roots"], ["action", "content"]]
    assert [a["result"].get("action") for a in answers] == [None, "accept"]
    assert methods[-1] == "ping"
    streams = [e for e in upstream.events() if _is("GET", 200, session)(e)]
    assert len(streams) >= 1
    statuses = {e["status"] for e in upstream.events() if e["event"] == "response"}
    assert statuses <= {200, 202}, statuses


def test_mcp_authentication_failures_stay_http_401(sdk_stack: SdkStack) -> None:
    envoy, upstream = sdk_stack
    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
    headers = {"accept": "application/json, text/event-stream"}
    for token in (None, "not-a-jwt"):
        sent = {**headers, **({"authorization": f"Bearer {token}"} if token else {})}
        response = httpx.post(envoy.url("/mcp"), json=initialize, headers=sent, timeout=30)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer ")
    # The SDK surfaces it as the HTTP error it is, before any session exists.
    with pytest.raises(BaseException) as caught:
        anyio.run(session_flow, envoy.url("/mcp"), "not-a-jwt", upstream)
    assert "401" in repr(caught.value) or "401" in str(caught.value.__cause__)
    assert upstream.requests("/mcp") == []


def test_a_malformed_request_is_refused_and_a_denied_request_is_jsonrpc(
    sdk_stack: SdkStack,
) -> None:
    envoy, upstream = sdk_stack
    headers = {
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {demo_token(sub='agent-support')}",
    }
    bad_id = {"jsonrpc": "2.0", "id": True, "method": "tools/list"}
    response = httpx.post(envoy.url("/mcp"), json=bad_id, headers=headers, timeout=30)
    assert response.status_code == 400 and response.json()["error"]
    bad_args = {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {"name": "search_tickets", "arguments": "q=refund"},
    }
    response = httpx.post(envoy.url("/mcp"), json=bad_args, headers=headers, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert (answer["id"], answer["error"]["code"]) == (4, -32600)
    assert answer["error"]["message"] == "not a well-formed MCP request"
    assert json.dumps(answer["error"]["data"]).count("decision_id") == 1
    assert upstream.requests("/mcp") == []
