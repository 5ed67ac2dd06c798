"""Streams longer than Envoy's 15 s default route timeout pass the shipped config whole: a
20 s MCP tool reporting progress (official MCP SDK) and a 25 s streamed chat completion
(OpenAI SDK), run side by side. Judged by events (every progress notification and chunk
arrives, the stream ends as the server ended it, Envoy counts no upstream timeout), never
by the clock."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import anyio
import httpx
import openai
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from tests.support.sdk_upstream import SdkStack
from tests.support.tokens import demo_token

TOOL_SECONDS = 20
STREAM_SECONDS = 25
# Bounds, so a cut stream fails the test instead of hanging it (an SDK may wait forever for
# a response Envoy cut off): far above the streams' own lengths, even on a busy machine.
BOUND = 120


async def follow_logs(url: str, token: str) -> tuple[list[float], types.CallToolResult]:
    """Call the long tool; return the progress values seen and the result."""
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    headers = {"authorization": f"Bearer {token}"}
    with anyio.fail_after(BOUND):
        return await _follow_logs(url, headers, progress, on_progress)


async def _follow_logs(
    url: str, headers: dict[str, str], progress: list[float], on_progress: Any
) -> tuple[list[float], types.CallToolResult]:
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=300)) as client,
        streamable_http_client(url, http_client=client) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool(
            "read_logs",
            {"pod": "payments/web-0", "follow_seconds": TOOL_SECONDS},
            progress_callback=on_progress,
            read_timeout_seconds=timedelta(seconds=BOUND),
        )
    return progress, result


def stream_completion(base_url: str, out: dict[str, Any]) -> None:
    """A streamed chat completion lasting STREAM_SECONDS; its chunks into `out`."""
    try:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=BOUND)
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Write slowly."}],
            stream=True,
            extra_headers={"x-test-stream-seconds": str(STREAM_SECONDS)},
        )
        chunks = list(stream)
        out["text"] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        out["finish"] = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    except BaseException as exc:  # reported by the test thread
        out["error"] = exc


def test_long_tool_and_long_stream_are_not_cut(sdk_stack: SdkStack) -> None:
    envoy, _ = sdk_stack
    completion: dict[str, Any] = {}
    streaming = threading.Thread(target=stream_completion, args=(envoy.url("/v1"), completion))
    streaming.start()
    try:
        progress, result = anyio.run(follow_logs, envoy.url("/mcp"), demo_token(sub="agent-devops"))
    finally:
        streaming.join(timeout=BOUND)
    assert not streaming.is_alive()
    assert "error" not in completion, completion.get("error")
    assert progress == [float(n) for n in range(1, TOOL_SECONDS + 1)]
    assert not result.isError
    assert result.content[0].text == f"followed payments/web-0 for {TOOL_SECONDS} s"  # type: ignore[union-attr]
    assert completion["text"] == "".join(f"t{i} " for i in range(STREAM_SECONDS))
    assert completion["finish"] == "stop"
    assert envoy.stat("cluster.upstream.upstream_rq_timeout") == 0
    assert envoy.stat("cluster.upstream.upstream_rq_per_try_idle_timeout") in (None, 0)
    assert envoy.stat("http.ingress.downstream_rq_idle_timeout") == 0
