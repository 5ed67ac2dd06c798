"""The upstream the real-SDK end-to-end tests talk to through Envoy, in one process.

- `/mcp`: a FastMCP server (the official MCP Python SDK, streamable-HTTP transport,
  stateful sessions, SSE responses) with the demo agents' tools. `list_pods` asks the
  client for its roots (a server-initiated request, sent on the session's GET stream);
  `read_logs` asks the user through an elicitation, or with `follow_seconds` runs that long
  and reports progress every second.
- `/v1/...` and `/internal/v1/...`: OpenAI- and Anthropic-shaped endpoints (chat
  completions, responses, embeddings, messages, the model catalogue), streamed when the body
  asks; a request header `x-test-stream-seconds: N` makes a stream last N seconds, one
  chunk a second.

The shipped Envoy config has one `upstream` cluster, so one process serves both. Every
request it receives is a JSON line in the log file (method, path, headers, body), and so is
the start and the end of every response (`event`: `request`, `response`, `done`): what the
upstream saw, which the tests wait on instead of sleeping.

Run: python -m tests.support.sdk_upstream --port PORT --log FILE
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.streamable_http import GET_STREAM_KEY
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

server = FastMCP("devops", host="127.0.0.1")


async def _get_stream_open(ctx: Context) -> None:  # type: ignore[type-arg]
    """Wait until this session's GET event stream is open: a request the server sends on
    its own goes there, and is dropped when there is none."""
    request = ctx.request_context.request
    session_id = request.headers.get("mcp-session-id", "") if request is not None else ""
    with anyio.fail_after(30):
        while True:
            transport = server.session_manager._server_instances.get(session_id)
            if transport is not None and GET_STREAM_KEY in transport._request_streams:
                return
            await anyio.sleep(0.02)


@server.tool()
async def list_pods(ctx: Context) -> str:  # type: ignore[type-arg]
    """The pods in the namespaces the client works in (its roots)."""
    await _get_stream_open(ctx)
    roots = await ctx.session.list_roots()
    return ", ".join(f"{root.name}/web-0" for root in roots.roots)


class Debug(BaseModel):
    """What the elicitation asks."""

    include_debug: bool


@server.tool()
async def read_logs(pod: str, ctx: Context, follow_seconds: int = 0) -> str:  # type: ignore[type-arg]
    """A pod's logs; with follow_seconds, follow them that long, reporting progress."""
    if follow_seconds:
        for second in range(1, follow_seconds + 1):
            await anyio.sleep(1)
            await ctx.report_progress(second, follow_seconds, f"{second} s of {pod}")
        return f"followed {pod} for {follow_seconds} s"
    answer = await ctx.elicit(f"Include debug lines for {pod}?", Debug)
    lines = [f"{pod}: INFO started"]
    if answer.action == "accept" and answer.data is not None and answer.data.include_debug:
        lines.append(f"{pod}: DEBUG cache warm")
    return "\n".join(lines)


@server.tool()
async def delete_pod(pod: str) -> str:
    """Delete a pod."""
    return f"deleted {pod}"


@server.tool()
async def search_tickets(q: str) -> str:
    """Search support tickets."""
    return f"ticket 7 matches {q}"


# ---------------------------------------------------------------------- provider endpoints


def _sse(
    events: list[tuple[str | None, Any]], seconds: float, tick: str | None = None
) -> StreamingResponse:
    """Server-sent events; those named "tick" are spread over `seconds` and sent under the
    name `tick` (OpenAI names no event, Anthropic names each)."""

    async def stream() -> AsyncIterator[bytes]:
        ticks = max(1, sum(n == "tick" for n, _ in events))
        for name, data in events:
            if name == "tick":
                await anyio.sleep(seconds / ticks)
                name = tick
            text = data if isinstance(data, str) else json.dumps(data)
            yield (f"event: {name}\n" if name else "").encode() + f"data: {text}\n\n".encode()

    return StreamingResponse(stream(), media_type="text/event-stream")


def _openai_chat(body: dict[str, Any], seconds: float) -> Response:
    model = body.get("model", "")
    if not body.get("stream"):
        message = {"role": "assistant", "content": "ok"}
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )
    count = max(1, int(seconds))

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [choice],
        }

    events: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}))]
    events += [("tick", chunk({"content": f"t{i} "})) for i in range(count)]
    events += [(None, chunk({}, "stop")), (None, "[DONE]")]
    return _sse(events, seconds)


def _openai_responses(body: dict[str, Any]) -> Response:
    text = {"type": "output_text", "text": "ok", "annotations": []}
    item = {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [text],
    }
    return JSONResponse(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": body.get("model", ""),
            "output": [item],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
    )


def _openai_embeddings(body: dict[str, Any]) -> Response:
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) else 1
    data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]} for i in range(count)]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
    )


def _anthropic_messages(body: dict[str, Any], seconds: float) -> Response:
    model = body.get("model", "")
    usage = {"input_tokens": 1, "output_tokens": 1}
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if not body.get("stream"):
        return JSONResponse({**message, "content": [{"type": "text", "text": "ok"}]})
    count = max(1, int(seconds))
    started = {**message, "content": [], "stop_reason": None}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": started}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    for i in range(count):
        delta = {"type": "text_delta", "text": f"t{i} "}
        events.append(("tick", {"type": "content_block_delta", "index": 0, "delta": delta}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _sse(events, seconds, "content_block_delta")


def _models(rest: str, anthropic: bool) -> Response:
    ids = ["claude-sonnet-4-5"] if anthropic else ["gpt-4o", "gpt-4o-mini"]
    if anthropic:
        entries = [
            {
                "type": "model",
                "id": i,
                "display_name": i,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for i in ids
        ]
    else:
        entries = [{"id": i, "object": "model", "created": 0, "owned_by": "test"} for i in ids]
    if rest.startswith("models/"):
        wanted = rest.removeprefix("models/")
        found = [e for e in entries if e["id"] == wanted]
        return JSONResponse(found[0]) if found else JSONResponse({}, status_code=404)
    if anthropic:
        return JSONResponse(
            {"data": entries, "has_more": False, "first_id": ids[0], "last_id": ids[-1]}
        )
    return JSONResponse({"object": "list", "data": entries})


async def provider(request: Request) -> Response:
    """OpenAI- and Anthropic-shaped answers for /v1/... and /internal/v1/..."""
    rest = request.path_params["rest"]
    anthropic = "anthropic-version" in request.headers
    if request.method == "GET" and (rest == "models" or rest.startswith("models/")):
        return _models(rest, anthropic)
    body = json.loads(await request.body() or b"{}")
    seconds = float(request.headers.get("x-test-stream-seconds") or 0)
    if rest == "chat/completions":
        return _openai_chat(body, seconds)
    if rest == "responses":
        return _openai_responses(body)
    if rest == "embeddings":
        return _openai_embeddings(body)
    if rest == "messages":
        return _anthropic_messages(body, seconds)
    return JSONResponse({"error": {"message": f"no such endpoint: {rest}"}}, status_code=404)


for _prefix in ("/v1/{rest:path}", "/internal/v1/{rest:path}"):
    server.custom_route(_prefix, methods=["GET", "POST"])(provider)


@server.custom_route("/__ready", methods=["GET"])
async def ready(_: Request) -> Response:
    """Readiness probe for the test harness (not logged)."""
    return JSONResponse({"ok": True})


# ---------------------------------------------------------------------- what the upstream saw


class Recorder:
    """ASGI middleware writing every request and response start/end as a JSON line."""

    def __init__(self, app: Callable[..., Awaitable[None]], log: Path) -> None:
        self.app = app
        self.log = log.open("a", encoding="utf-8", buffering=1)

    def write(self, **event: Any) -> None:
        """One line, flushed (line-buffered), with a wall-clock stamp for failure messages."""
        self.log.write(json.dumps({"at": time.time(), **event}) + "\n")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/__ready":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        where = {"method": scope["method"], "path": scope["path"]}
        session = headers.get("mcp-session-id", "")
        self.write(event="request", **where, headers=headers, body=body.decode("utf-8", "replace"))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.write(event="response", **where, status=message["status"], session=session)
            await send(message)

        try:
            await self.app(scope, replay, sending)
        finally:
            self.write(event="done", **where, session=session)


# ---------------------------------------------------------------------- the test harness' side


Event = dict[str, Any]


class SdkUpstream:
    """A running sdk_upstream process, and what it has seen."""

    def __init__(self, port: int, proc: Any, log: Path) -> None:
        self.port = port
        self.proc = proc
        self.log = log

    def url(self, path: str = "/") -> str:
        """Direct URL (bypassing Envoy)."""
        return f"http://127.0.0.1:{self.port}{path}"

    def events(self) -> list[Event]:
        """Every event so far, in order."""
        text = self.log.read_text(encoding="utf-8") if self.log.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def requests(self, prefix: str = "/") -> list[Event]:
        """The requests received on paths under `prefix`, bodies parsed when JSON."""
        out = []
        for event in self.events():
            if event["event"] == "request" and event["path"].startswith(prefix):
                try:
                    event["json"] = json.loads(event["body"]) if event["body"] else None
                except ValueError:
                    event["json"] = None
                out.append(event)
        return out

    def _found(self, predicate: Callable[[Event], bool]) -> Event | None:
        return next((e for e in self.events() if predicate(e)), None)

    def wait_for(self, predicate: Callable[[Event], bool], what: str, timeout: float = 60) -> Event:
        """The first event matching `predicate`, waiting for it to happen."""
        deadline = time.monotonic() + timeout
        while (found := self._found(predicate)) is None:
            self.proc.check_alive(f"while waiting for {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"upstream never saw {what}; it saw: {self.events()[-10:]}")
            time.sleep(0.02)
        return found

    async def until(
        self, predicate: Callable[[Event], bool], what: str, timeout: float = 60
    ) -> Event:
        """`wait_for` inside an event loop (other tasks go on while it waits)."""
        with anyio.fail_after(timeout):
            while (found := self._found(predicate)) is None:
                self.proc.check_alive(f"while waiting for {what}")
                await anyio.sleep(0.02)
        return found

    def stop(self) -> None:
        """Stop the process (teardown does it anyway)."""
        self.proc.stop()


# An Envoy handle (tests.support) in front of authz, and the upstream behind them.
SdkStack = tuple[Any, SdkUpstream]


def start_sdk_upstream(workdir: Path) -> SdkUpstream:
    """Start the upstream on a free port and wait until it answers."""
    import sys

    from tests.support.health import wait_http_ready
    from tests.support.paths import REPO_ROOT
    from tests.support.ports import free_port
    from tests.support.proc import Proc

    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"sdk-upstream-{port}.jsonl"
    proc = Proc(
        [sys.executable, "-m", "tests.support.sdk_upstream", "--port", str(port), "--log", log],
        log_path=workdir / f"sdk-upstream-{port}.log",
        name=f"sdk-upstream:{port}",
        cwd=REPO_ROOT,
    ).start()
    handle = SdkUpstream(port, proc, log)
    try:
        wait_http_ready(handle.url("/__ready"), 30, proc=proc)
    except BaseException:
        proc.stop()
        raise
    return handle


def main() -> None:
    """Serve on 127.0.0.1:PORT until killed."""
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    app = Recorder(server.streamable_http_app(), args.log)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
