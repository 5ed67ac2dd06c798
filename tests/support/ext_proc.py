"""Build ext_proc messages as Envoy sends them (and the completions they carry), and drive a
ResponseStream with them.

Used by the response-path unit tests: the same messages Envoy 1.40 sends with the shipped
filter (raw header values, the ext_authz namespace forwarded in metadata_context, the
configured response body mode in the first message's protocol_config).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

from google.protobuf import struct_pb2

from authz._proto.envoy.config.core.v3 import base_pb2
from authz._proto.envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from authz.observability.decision_log import DecisionLog
from authz.observability.metrics import Metrics
from authz.policy.compiler import CompiledConfig
from authz.response_path.stream import ResponseStream
from authz.service import Checker

Mode = processing_mode_pb2.ProcessingMode
FAKE_AWS_KEY = "AKIA" + "Q7ZXW3RT5YU8IOPL"  # format-valid, not a real key


def completion(text: str, output_tokens: int = 12) -> dict[str, Any]:
    """An OpenAI chat completion."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": output_tokens, "total_tokens": 21},
    }


def header_map(headers: dict[str, str]) -> base_pb2.HeaderMap:
    """Headers as Envoy sends them to ext_proc (values in raw_value)."""
    return base_pb2.HeaderMap(
        headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in headers.items()]
    )


def metadata(fields: dict[str, Any]) -> base_pb2.Metadata:
    """The forwarded ext_authz namespace."""
    struct = struct_pb2.Struct()
    struct.update(fields)
    return base_pb2.Metadata(filter_metadata={"envoy.filters.http.ext_authz": struct})


def request_headers(
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    policy: str | None = "chat",
    decision_id: str = "d" * 32,
    mode: int = Mode.BUFFERED,
) -> pb.ProcessingRequest:
    """The first message of a stream."""
    all_headers = {
        ":authority": "api.example",
        ":path": path,
        ":method": method,
        ":scheme": "http",
        "x-request-id": "rid-1",
        **(headers or {}),
    }
    message = pb.ProcessingRequest(
        request_headers=pb.HttpHeaders(headers=header_map(all_headers), end_of_stream=True),
        protocol_config=pb.ProtocolConfiguration(response_body_mode=mode),  # type: ignore[arg-type]
    )
    if policy is not None:
        message.metadata_context.CopyFrom(
            metadata({"policy": policy, "decision_id": decision_id, "decision": "allow"})
        )
    return message


def response_headers(
    status: int = 200,
    content_type: str = "application/json",
    extra: dict[str, str] | None = None,
    end: bool = False,
) -> pb.ProcessingRequest:
    """The response headers message."""
    headers = {":status": str(status), "content-type": content_type, **(extra or {})}
    return pb.ProcessingRequest(
        response_headers=pb.HttpHeaders(headers=header_map(headers), end_of_stream=end)
    )


def body(data: bytes | str, end: bool = True) -> pb.ProcessingRequest:
    """One response body message."""
    raw = data.encode() if isinstance(data, str) else data
    return pb.ProcessingRequest(response_body=pb.HttpBody(body=raw, end_of_stream=end))


class Harness:
    """A Checker with an in-memory decision log, and a stream driven message by message."""

    def __init__(self, config: CompiledConfig) -> None:
        self.log_stream = io.StringIO()
        self.checker = Checker(config, metrics=Metrics(), log=DecisionLog(self.log_stream))

    def stream(self) -> ResponseStream:
        """A new ext_proc stream."""
        return ResponseStream(self.checker, None)

    def run(self, messages: Iterable[pb.ProcessingRequest]) -> list[pb.ProcessingResponse]:
        """Every reply of one stream, in order."""
        stream = self.stream()
        replies = [send(stream, m) for m in messages]
        stream.close()
        return replies

    def lines(self) -> list[dict[str, Any]]:
        """The decision-log lines written so far."""
        return [json.loads(line) for line in self.log_stream.getvalue().splitlines()]

    def counted(self, policy: str, rule: str, decision: str) -> float:
        """authz_response_decisions_total for these labels."""
        value = self.checker.metrics.registry.get_sample_value(
            "authz_response_decisions_total",
            {"policy": policy, "rule": rule, "decision": decision},
        )
        return value or 0.0


def send(stream: ResponseStream, message: pb.ProcessingRequest) -> pb.ProcessingResponse:
    """One message through the stream (a key fetch is waited for, as the thread server does)."""
    steps = stream.handle(message)
    try:
        pending = next(steps)
        while True:
            pending.wait()
            pending = steps.send(None)
    except StopIteration as done:
        return done.value


def body_of(reply: pb.ProcessingResponse) -> bytes | None:
    """The body a reply puts in place (None: unchanged)."""
    common = reply.response_body.response
    mutation = common.body_mutation
    kind = mutation.WhichOneof("mutation")
    if kind == "body":
        return mutation.body
    if kind == "clear_body":
        return b""
    return None


def set_headers(common: pb.CommonResponse) -> dict[str, str]:
    """The headers a reply sets."""
    return {h.header.key: h.header.raw_value.decode() for h in common.header_mutation.set_headers}
