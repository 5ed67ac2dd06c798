"""One ext_proc stream, message by message, as Envoy 1.40 sends them with the shipped filter:
what authz asks Envoy for (mode_override), what it answers, and what it records."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from authz.policy.compiler import CompiledConfig
from authz.response_path.replies import BUFFER_BODY, HEADERS_ONLY, SKIP_RESPONSE, STREAM_BODY
from authz.response_path.service import AsyncExternalProcessor, ExternalProcessor
from tests.support.ext_proc import (
    Harness,
    Mode,
    body,
    body_of,
    request_headers,
    response_headers,
    send,
    set_headers,
)
from tests.support.tokens import demo_token
from tests.unit.helpers import ENGINES, compile_policy

KEY = "AKIA" + "Q7ZXW3RT5YU8IOPL"  # format-valid, not a real key
KEYS = Path("deploy/envoy/keys").resolve()
POLICY = f"""
identity:
  jwt:
    - issuer: https://idp.example.com
      audiences: [llm-gateway]
      jwks_file: {KEYS / "jwks.json"}
data:
  watched: [agent-7]
policies:
  - name: chat
    default: allow
    rules: []
    {{extra}}
    response_rules:
      - name: no-credentials
        when: secrets(response.llm.text).size() > 0
        effect: deny
        message: the answer held a credential
      - name: watched-agent
        when: identity.subject in data.watched && response.llm.text.contains("classified")
        effect: deny
        status: 451
      - name: tenant-says-no
        when: >-
          "envoy.filters.http.ext_authz" in metadata
          && "tenant" in metadata["envoy.filters.http.ext_authz"]
          && metadata["envoy.filters.http.ext_authz"]["tenant"] == "blocked"
        effect: deny
      - name: personal-data
        when: pii(response.body.text).size() > 0
        effect: redact
      - name: usage
        when: >-
          response.llm.usage.output_tokens != null
          && "x-team" in request.headers && request.headers["x-team"] == "ml"
        effect: allow
        response_headers:
          x-usage-output-tokens: >-
            response.llm.usage.output_tokens != null ? response.llm.usage.output_tokens : -1
  - name: status-only
    default: allow
    rules: []
    response_rules:
      - name: no-server-errors
        when: response.status >= 500
        effect: deny
        status: 502
  - name: plain
    default: allow
    rules: []
"""


def completion(text: str, tokens: int = 3) -> bytes:
    body_ = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": tokens},
    }
    return json.dumps(body_).encode()


def make(tmp_path: Path, engine: str, extra: str = "") -> Harness:
    return Harness(compile_policy(tmp_path, POLICY.format(extra=extra), engine))


@pytest.fixture(params=ENGINES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    return make(tmp_path, request.param)


def exchange(
    harness: Harness, answer: bytes, *, content_type: str = "application/json", **request: Any
) -> list[pb.ProcessingResponse]:
    length = {"content-length": str(len(answer))}
    return harness.run(
        [
            request_headers(**request),
            response_headers(content_type=content_type, extra=length),
            body(answer),
        ]
    )


# -- what authz asks Envoy for ----------------------------------------------------------------


def test_a_policy_without_response_rules_is_asked_for_nothing(harness: Harness) -> None:
    (reply,) = harness.run([request_headers(policy="plain")])
    assert reply.mode_override == SKIP_RESPONSE
    assert reply.HasField("request_headers")
    assert harness.lines() == []


def test_a_request_authz_did_not_judge_is_passed(harness: Harness) -> None:
    (reply,) = harness.run([request_headers(policy=None)])
    assert reply.mode_override == SKIP_RESPONSE
    # A local reply (an ext_authz deny) comes without a request phase: passed as it is.
    (reply,) = harness.run([response_headers(status=403)])
    assert reply.HasField("response_headers") and reply.mode_override == SKIP_RESPONSE


def test_status_rules_are_judged_at_the_headers_without_the_body(harness: Harness) -> None:
    first, second = harness.run([request_headers(policy="status-only"), response_headers(200)])
    assert first.mode_override == HEADERS_ONLY
    assert second.HasField("response_headers")
    first, second = harness.run([request_headers(policy="status-only"), response_headers(503)])
    assert second.immediate_response.status.code == 502
    (line,) = harness.lines()[1:]
    assert (line["decision"], line["rule"], line["upstream_status"]) == (
        "deny",
        "no-server-errors",
        503,
    )


def test_a_body_policy_gets_the_body_uncompressed_and_in_the_right_mode(
    harness: Harness,
) -> None:
    stream = harness.stream()
    reply = send(stream, request_headers(mode=Mode.STREAMED))
    assert not reply.HasField("mode_override")  # the route's modes, body included
    assert list(reply.request_headers.response.header_mutation.remove_headers) == [
        "accept-encoding"
    ]
    reply = send(stream, response_headers(content_type="application/json"))
    assert reply.mode_override == BUFFER_BODY  # judged whole, before the status leaves
    stream = harness.stream()
    send(stream, request_headers(mode=Mode.BUFFERED))
    reply = send(stream, response_headers(content_type="text/event-stream; charset=utf-8"))
    assert reply.mode_override == STREAM_BODY  # events judged as they pass


# -- what authz answers --------------------------------------------------------------------


def test_a_credential_is_denied_with_the_rules_status_and_body(harness: Harness) -> None:
    *_, reply = exchange(harness, completion(f"use {KEY}"), decision_id="e" * 32)
    denied = reply.immediate_response
    assert denied.status.code == 502
    assert json.loads(denied.body) == {
        "error": "the answer held a credential",
        "decision_id": "e" * 32,
    }
    headers = {h.header.key: h.header.raw_value for h in denied.headers.set_headers}
    assert headers["content-type"] == b"application/json"
    assert harness.counted("chat", "no-credentials", "deny") == 1


def test_personal_data_is_redacted_with_a_content_length_that_fits(harness: Harness) -> None:
    raw = completion("write to jane.doe@example.com")
    *_, reply = exchange(harness, raw)
    cleaned = body_of(reply)
    assert cleaned is not None
    assert json.loads(cleaned)["choices"][0]["message"]["content"] == "write to [EMAIL]"
    assert set_headers(reply.response_body.response)["content-length"] == str(len(cleaned))
    (line,) = harness.lines()
    assert (line["phase"], line["decision"], line["rule"]) == (
        "response",
        "redact",
        "personal-data",
    )


def test_an_allow_adds_its_headers_and_leaves_the_body(harness: Harness) -> None:
    raw = completion("fine", tokens=42)
    *_, reply = exchange(harness, raw, headers={"x-team": "ml"})
    assert body_of(reply) is None  # unchanged
    headers = set_headers(reply.response_body.response)
    assert headers == {"x-usage-output-tokens": "42", "content-length": str(len(raw))}
    *_, reply = exchange(harness, raw, headers={"x-team": "sales"})
    assert "x-usage-output-tokens" not in set_headers(reply.response_body.response)


def test_response_rules_read_the_requests_identity_and_metadata(tmp_path: Path) -> None:
    harness = make(tmp_path, "cel-cpp")
    token = {"authorization": f"Bearer {demo_token(sub='agent-7')}"}
    *_, reply = exchange(harness, completion("classified plans"), headers=token)
    assert reply.immediate_response.status.code == 451
    *_, reply = exchange(harness, completion("classified plans"))
    assert not reply.HasField("immediate_response")  # anonymous: not watched
    stream = harness.stream()
    message = request_headers()
    message.metadata_context.filter_metadata["envoy.filters.http.ext_authz"]["tenant"] = "blocked"
    send(stream, message)
    send(stream, response_headers())
    assert send(stream, body(completion("hi"))).HasField("immediate_response")


# -- failing closed --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "extra", "answer", "why"),
    [
        ("application/json", {}, b'{"choices": [', "declared JSON"),
        ("application/json", {}, b'{"a": 1, "a": 2}', "duplicate key"),
        ("text/plain", {"content-encoding": "gzip"}, b"\x1f\x8b", "content-encoding gzip"),
        ("text/plain", {}, b"x" * 5000, "larger than max_body_bytes"),
    ],
)
def test_an_unreadable_response_is_withheld(
    tmp_path: Path, content_type: str, extra: dict[str, str], answer: bytes, why: str
) -> None:
    harness = make(tmp_path, "cel-cpp")
    harness.checker.swap(_small(harness.checker.config))
    messages = [request_headers(), response_headers(content_type=content_type, extra=extra)]
    replies = harness.run([*messages, body(answer)])
    denied = next(r for r in replies if r.HasField("immediate_response"))
    assert denied.immediate_response.status.code == 502
    assert json.loads(denied.immediate_response.body)["error"] == "response withheld"
    (line,) = harness.lines()
    assert line["reason"] == "unreadable_response" and why in line["message"]


def test_on_unreadable_allow_passes_it_unjudged(tmp_path: Path) -> None:
    harness = make(tmp_path, "cel-cpp", extra="on_unreadable: allow")
    *_, reply = exchange(harness, b'{"choices": [ ' + KEY.encode())
    assert reply.HasField("response_body") and body_of(reply) is None
    (line,) = harness.lines()
    assert (line["decision"], line["reason"]) == ("allow", "unreadable_response")


def test_a_dry_run_policy_only_records(tmp_path: Path) -> None:
    harness = make(tmp_path, "cel-python", extra="mode: dry-run")
    *_, reply = exchange(harness, completion(f"use {KEY}"))
    assert reply.HasField("response_body") and body_of(reply) is None
    (line,) = harness.lines()
    assert line["decision"] == "allow"
    assert line["dry_run"]["decision"] == "deny" and line["dry_run"]["rule"] == "no-credentials"
    assert harness.counted("chat", "no-credentials", "deny") == 1  # counted as it would be


def test_a_policy_gone_after_a_reload_withholds(harness: Harness) -> None:
    replies = harness.run([request_headers(policy="renamed"), response_headers()])
    assert replies[0].mode_override == HEADERS_ONLY
    assert replies[1].immediate_response.status.code == 502
    assert harness.lines()[0]["reason"] == "unknown_policy"


def test_a_body_streamed_although_buffering_was_asked_is_sent_whole_at_the_end(
    harness: Harness,
) -> None:
    stream = harness.stream()
    send(stream, request_headers())
    send(stream, response_headers())
    raw = completion("write to jane.doe@example.com")
    assert body_of(send(stream, body(raw[:20], end=False))) == b""
    final = body_of(send(stream, body(raw[20:], end=True)))
    assert final is not None and b"[EMAIL]" in final and json.loads(final)


def test_a_stream_is_cut_with_an_error_event(harness: Harness) -> None:
    stream = harness.stream()
    send(stream, request_headers(decision_id="f" * 32))
    send(stream, response_headers(content_type="text/event-stream"))
    chunk = {"choices": [{"index": 0, "delta": {"content": f"key {KEY}"}}]}
    reply = send(stream, body(f"data: {json.dumps(chunk)}\n\n", end=False))
    event = body_of(reply)
    assert event is not None and event.startswith(b"event: error\ndata: ")
    assert json.loads(event.split(b"data: ")[1]) == {
        "error": "the answer held a credential",
        "decision_id": "f" * 32,
    }
    assert body_of(send(stream, body(b"data: more\n\n", end=True))) == b""
    (line,) = harness.lines()
    assert line["stream"]["cut"] is True


def _small(config: CompiledConfig) -> CompiledConfig:
    import dataclasses

    return dataclasses.replace(
        config, limits=dataclasses.replace(config.limits, max_body_bytes=4096)
    )


# -- the gRPC adapters -----------------------------------------------------------------------


def _messages() -> list[pb.ProcessingRequest]:
    return [request_headers(), response_headers(), body(completion(f"use {KEY}"))]


def test_the_thread_pool_servicer_answers_each_message(harness: Harness) -> None:
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(2))
    pb_grpc.add_ExternalProcessorServicer_to_server(ExternalProcessor(harness.checker), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            replies = list(pb_grpc.ExternalProcessorStub(channel).Process(iter(_messages())))
    finally:
        server.stop(None)
    assert [r.WhichOneof("response") for r in replies] == [
        "request_headers",
        "response_headers",
        "immediate_response",
    ]


def test_the_asyncio_servicer_answers_each_message(harness: Harness) -> None:
    async def run() -> list[pb.ProcessingResponse]:
        server = grpc.aio.server()
        servicer = AsyncExternalProcessor(harness.checker)
        pb_grpc.add_ExternalProcessorServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = pb_grpc.ExternalProcessorStub(channel).Process(iter(_messages()))
                return [reply async for reply in call]
        finally:
            await server.stop(None)

    replies = asyncio.run(run())
    assert replies[-1].immediate_response.status.code == 502
    assert harness.lines()[0]["rule"] == "no-credentials"


@pytest.mark.parametrize("on_unreadable", ["deny", "allow"])
def test_a_streamed_body_past_the_limit_is_cut_or_let_through(
    tmp_path: Path, on_unreadable: str
) -> None:
    harness = make(tmp_path, "cel-cpp", extra=f"on_unreadable: {on_unreadable}")
    harness.checker.swap(_small(harness.checker.config))
    stream = harness.stream()
    send(stream, request_headers())
    send(stream, response_headers(content_type="text/plain"))
    assert body_of(send(stream, body(b"a" * 3000, end=False))) == b""  # kept back
    at_limit = body_of(send(stream, body(b"b" * 3000, end=False)))
    later = body_of(send(stream, body(b"c" * 10, end=True)))
    if on_unreadable == "deny":
        assert at_limit is not None and json.loads(at_limit)["error"] == "response withheld"
        assert later == b""  # nothing after the deny body
    else:
        assert at_limit == b"a" * 3000 + b"b" * 3000  # what was kept back, then the rest
        assert later is None
    (line,) = harness.lines()
    assert line["reason"] == "unreadable_response"


def test_a_body_that_cannot_be_redacted_is_withheld_once(tmp_path: Path) -> None:
    harness = make(tmp_path, "cel-cpp")
    messages = [request_headers(), response_headers(content_type="text/plain")]
    *_, reply = harness.run([*messages, body(b"\xff\xfe mail jane.doe@example.com")])
    assert reply.immediate_response.status.code == 502
    (line,) = harness.lines()
    assert (line["decision"], line["rule"]) == ("deny", "personal-data")
    assert "cannot be redacted" in line["message"]


def test_every_phase_is_answered_when_envoy_ignores_mode_override(harness: Harness) -> None:
    """Without `allow_mode_override` Envoy sends every phase the filter config names."""
    raw = completion("clean")
    for policy in ("plain", None, "status-only"):
        replies = harness.run(
            [request_headers(policy=policy), response_headers(), body(raw), body(b"", end=True)]
        )
        kinds = [r.WhichOneof("response") for r in replies]
        assert kinds == ["request_headers", "response_headers", "response_body", "response_body"]
        assert all(body_of(r) is None for r in replies[2:])  # passed as they came
