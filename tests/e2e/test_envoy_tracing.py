"""Envoy's side of distributed tracing, against a real in-process OTLP/gRPC receiver.

The shipped config traces every request with Envoy's OpenTelemetry tracer. These tests pin
down what Envoy exports and what it propagates, which is what the authz service has to
join: the W3C ``traceparent`` on the ext_authz gRPC call (parented on Envoy's CLIENT span
for that call) and on the request to the upstream (parented on Envoy's SERVER span).

No authz service is needed: the first test removes the ext_authz filter, the second
answers ``Authorization/Check`` with a minimal in-test gRPC server that records metadata.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from authz._proto.envoy.service.auth.v3 import external_auth_pb2
from tests.support.envoy import (
    EXT_AUTHZ_FILTER,
    EXT_PROC_FILTER,
    ConfigDict,
    EnvoyFactory,
    remove_http_filter,
)
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.ports import free_port
from tests.support.upstream import UpstreamHandle

CHECK_METHOD = "/envoy.service.auth.v3.Authorization/Check"
EXT_AUTHZ_SPAN = "async envoy.service.auth.v3.Authorization.Check egress"
# A client-supplied trace context (the W3C spec's example ids).
CLIENT_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN_ID = "b7ad6b7169203331"


@dataclass(frozen=True)
class TraceParent:
    """A parsed W3C ``traceparent`` header: ``version-trace_id-parent_id-flags``."""

    version: str
    trace_id: str
    parent_id: str
    flags: str

    @classmethod
    def parse(cls, value: str) -> TraceParent:
        """Parse and sanity-check one ``traceparent`` value (lower-case hex fields)."""
        parts = value.strip().split("-")
        assert len(parts) == 4, f"malformed traceparent {value!r}"
        version, trace_id, parent_id, flags = parts
        assert (len(version), len(trace_id), len(parent_id), len(flags)) == (2, 32, 16, 2), value
        assert all(re.fullmatch("[0-9a-f]+", part) for part in parts), value
        assert trace_id != "0" * 32 and parent_id != "0" * 16, value
        return cls(version, trace_id, parent_id, flags)

    @property
    def sampled(self) -> bool:
        """The W3C ``sampled`` flag."""
        return bool(int(self.flags, 16) & 0x01)


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET ``path`` through Envoy; return the status and the JSON body (the upstream echo)."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(body) if body else None


def _without_authz(config: ConfigDict) -> None:
    """No authz at all: neither ext_authz nor the response path (ext_proc)."""
    remove_http_filter(config, EXT_AUTHZ_FILTER)
    remove_http_filter(config, EXT_PROC_FILTER)


def _without_ext_proc(config: ConfigDict) -> None:
    """The fake authz serves Check only: no response path (ext_proc) to ask it."""
    remove_http_filter(config, EXT_PROC_FILTER)


def _is_envoy_server_span(span: ReceivedSpan) -> bool:
    return span.service_name == "envoy" and span.kind == "SPAN_KIND_SERVER"


def _is_envoy_ext_authz_span(span: ReceivedSpan) -> bool:
    return span.service_name == "envoy" and span.name == EXT_AUTHZ_SPAN


# --------------------------------------------------------------------------- fake authz


class MetadataRecordingAuthz:
    """A minimal ``envoy.service.auth.v3.Authorization`` server that allows every request.

    Registered with a generic handler (no servicer class), it records the gRPC invocation
    metadata of each ``Check`` call as a list of ``(key, value)`` pairs.
    """

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str]]] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(
            "envoy.service.auth.v3.Authorization",
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    self._check,
                    request_deserializer=external_auth_pb2.CheckRequest.FromString,
                    response_serializer=external_auth_pb2.CheckResponse.SerializeToString,
                )
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def _check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        metadata = [(str(m.key), str(m.value)) for m in context.invocation_metadata()]
        with self._lock:
            self.calls.append(metadata)
        response = external_auth_pb2.CheckResponse()
        response.status.code = 0  # google.rpc.Code.OK
        response.ok_response.SetInParent()  # present but empty: allow, no mutations
        return response

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._server.stop(0).wait()


@pytest.fixture
def fake_authz() -> Iterator[MetadataRecordingAuthz]:
    """A :class:`MetadataRecordingAuthz` on a free port, stopped at teardown."""
    server = MetadataRecordingAuthz()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- tests


def test_envoy_exports_server_span_and_propagates_to_upstream(
    upstream: UpstreamHandle, envoy_factory: EnvoyFactory, otlp_receiver: OtlpReceiver
) -> None:
    envoy = envoy_factory(
        free_port(),
        upstream.port,
        otel_port=otlp_receiver.port,
        mutate=_without_authz,
    )

    status, echo = _get(envoy.port, "/public/traced")
    assert status == 200, echo

    (server,) = otlp_receiver.wait_for(_is_envoy_server_span)
    assert server.service_name == "envoy"
    assert server.parent_span_id == ""  # no client context: Envoy starts the trace
    assert server.attributes["http.method"] == "GET"
    assert server.attributes["http.status_code"] == "200"
    assert server.attributes["upstream_cluster"] == "upstream"
    assert server.attributes["guid:x-request-id"] == echo["headers"]["x-request-id"]

    # The upstream got the same trace, parented on the SERVER span (the router does not
    # open a span of its own unless spawn_upstream_span is set).
    traceparent = TraceParent.parse(echo["headers"]["traceparent"])
    assert traceparent.trace_id == server.trace_id
    assert traceparent.parent_id == server.span_id
    assert traceparent.sampled

    # Without ext_authz, that is all Envoy records for the request.
    assert [s.name for s in otlp_receiver.spans()] == [server.name], otlp_receiver.summary()


def test_envoy_propagates_trace_context_to_ext_authz(
    upstream: UpstreamHandle,
    envoy_factory: EnvoyFactory,
    otlp_receiver: OtlpReceiver,
    fake_authz: MetadataRecordingAuthz,
) -> None:
    envoy = envoy_factory(
        fake_authz.port, upstream.port, otel_port=otlp_receiver.port, mutate=_without_ext_proc
    )

    status, echo = _get(envoy.port, "/public/traced")
    assert status == 200, echo
    (metadata,) = fake_authz.calls
    keys = [key for key, _ in metadata]
    assert "traceparent" in keys, metadata
    assert keys.count("traceparent") == 1, metadata
    authz_parent = TraceParent.parse(dict(metadata)["traceparent"])
    assert authz_parent.sampled
    # Envoy's OpenTelemetry tracer speaks W3C only: no B3 or Jaeger headers.
    assert not {k for k in keys if k.startswith(("x-b3-", "uber-trace-id"))}, metadata
    assert "b3" not in keys, metadata

    server = otlp_receiver.wait_for(_is_envoy_server_span)[0]
    ext_authz = otlp_receiver.wait_for(_is_envoy_ext_authz_span)[0]
    assert server.trace_id == ext_authz.trace_id == authz_parent.trace_id

    # The span to parent authz's server span on is Envoy's CLIENT span for the Check call,
    # itself a child of the SERVER span for the downstream request.
    assert ext_authz.kind == "SPAN_KIND_CLIENT"
    assert ext_authz.parent_span_id == server.span_id
    assert authz_parent.parent_id == ext_authz.span_id
    assert ext_authz.attributes["upstream_cluster"] == "authz"
    assert ext_authz.attributes["grpc.status_code"] == "0"
    assert ext_authz.attributes["ext_authz_status"] == "ext_authz_ok"

    # The upstream request is a sibling: parented on the SERVER span, same trace.
    upstream_parent = TraceParent.parse(echo["headers"]["traceparent"])
    assert upstream_parent.trace_id == server.trace_id
    assert upstream_parent.parent_id == server.span_id


def test_envoy_continues_client_trace(
    upstream: UpstreamHandle,
    envoy_factory: EnvoyFactory,
    otlp_receiver: OtlpReceiver,
    fake_authz: MetadataRecordingAuthz,
) -> None:
    envoy = envoy_factory(
        fake_authz.port, upstream.port, otel_port=otlp_receiver.port, mutate=_without_ext_proc
    )

    incoming = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"
    status, echo = _get(envoy.port, "/public/traced", headers={"traceparent": incoming})
    assert status == 200, echo

    server = otlp_receiver.wait_for(_is_envoy_server_span)[0]
    ext_authz = otlp_receiver.wait_for(_is_envoy_ext_authz_span)[0]
    assert server.trace_id == ext_authz.trace_id == CLIENT_TRACE_ID
    assert server.parent_span_id == CLIENT_SPAN_ID
    (metadata,) = fake_authz.calls
    authz_parent = TraceParent.parse(dict(metadata)["traceparent"])
    assert (authz_parent.trace_id, authz_parent.parent_id) == (CLIENT_TRACE_ID, ext_authz.span_id)
    upstream_parent = TraceParent.parse(echo["headers"]["traceparent"])
    assert (upstream_parent.trace_id, upstream_parent.parent_id) == (
        CLIENT_TRACE_ID,
        server.span_id,
    )


def test_dead_collector_does_not_affect_requests(
    upstream: UpstreamHandle, envoy_factory: EnvoyFactory, fake_authz: MetadataRecordingAuthz
) -> None:
    """By default the harness points the otel cluster at a dead port: tracing stays on
    (traceparent still flows) and requests still succeed."""
    envoy = envoy_factory(fake_authz.port, upstream.port, mutate=_without_ext_proc)

    for _ in range(3):
        status, echo = _get(envoy.port, "/public/x")
        assert status == 200, echo
        TraceParent.parse(echo["headers"]["traceparent"])
    assert len(fake_authz.calls) == 3
