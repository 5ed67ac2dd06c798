"""An in-process OTLP/gRPC trace receiver for tests.

:class:`OtlpReceiver` is a real gRPC server implementing
``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on ``127.0.0.1`` with a free
port. Point an exporter at :attr:`OtlpReceiver.endpoint` (Envoy's OpenTelemetry tracer via
the ``otel`` cluster, or the Python SDK via ``OTEL_EXPORTER_OTLP_ENDPOINT=http://...``) and
read what arrived with :meth:`OtlpReceiver.spans` / :meth:`OtlpReceiver.wait_for`.

Every received span is flattened into a :class:`ReceivedSpan`: ids as lower-case hex,
resource ``service.name`` copied onto the span, attributes as a plain ``dict``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

SpanPredicate = Callable[["ReceivedSpan"], bool]

LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as received, flattened for easy assertions.

    ``kind`` and ``status_code`` are the OTLP enum names (``"SPAN_KIND_SERVER"``,
    ``"STATUS_CODE_UNSET"``, ...); :attr:`kind_name` / :attr:`status_name` drop the prefix.
    """

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service_name: str
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: str = "STATUS_CODE_UNSET"

    @property
    def kind_name(self) -> str:
        """``"SERVER"``, ``"CLIENT"``, ``"INTERNAL"``, ... (``kind`` without its prefix)."""
        return self.kind.removeprefix("SPAN_KIND_")

    @property
    def status_name(self) -> str:
        """``"UNSET"``, ``"OK"`` or ``"ERROR"`` (``status_code`` without its prefix)."""
        return self.status_code.removeprefix("STATUS_CODE_")

    def summary(self) -> str:
        """One line: service, name, kind, ids (for failure messages)."""
        return (
            f"{self.service_name}:{self.name!r} {self.kind_name} trace={self.trace_id} "
            f"span={self.span_id} parent={self.parent_span_id or '-'} "
            f"status={self.status_name}"
        )


def any_value_to_python(value: AnyValue) -> Any:
    """Convert an OTLP ``AnyValue`` into the matching plain Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    return getattr(value, which)


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """Convert a repeated OTLP ``KeyValue`` into ``{key: python value}``."""
    return {kv.key: any_value_to_python(kv.value) for kv in attributes}


def flatten_request(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Flatten every span of one ``ExportTraceServiceRequest``."""
    out: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource_attrs = attributes_to_dict(resource_spans.resource.attributes)
        service_name = str(resource_attrs.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=Span.SpanKind.Name(span.kind),
                        service_name=service_name,
                        attributes=attributes_to_dict(span.attributes),
                        status_code=Status.StatusCode.Name(span.status.code),
                    )
                )
    return out


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    """Hands every export to the receiver and answers with an empty (full-success) response."""

    def __init__(self, sink: Callable[[list[ReceivedSpan]], None]) -> None:
        self._sink = sink

    def Export(  # gRPC method name, hence CamelCase
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._sink(flatten_request(request))
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """A started OTLP/gRPC trace receiver on ``127.0.0.1:port`` (free port by default).

    Thread-safe; use as a context manager or call :meth:`stop` yourself.
    """

    def __init__(self, port: int = 0) -> None:
        self._spans: list[ReceivedSpan] = []
        self._exports = 0
        self._cond = threading.Condition()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self._record), self._server
        )
        bound = self._server.add_insecure_port(f"{LOCALHOST}:{port}")
        if bound == 0:
            raise RuntimeError(f"OTLP receiver could not bind {LOCALHOST}:{port}")
        self._port = bound
        self._server.start()

    def _record(self, spans: list[ReceivedSpan]) -> None:
        with self._cond:
            self._spans.extend(spans)
            self._exports += 1
            self._cond.notify_all()

    @property
    def port(self) -> int:
        """The TCP port the receiver listens on."""
        return self._port

    @property
    def endpoint(self) -> str:
        """``"127.0.0.1:PORT"`` (prefix ``http://`` for ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"{LOCALHOST}:{self._port}"

    @property
    def export_count(self) -> int:
        """How many ``Export`` calls have arrived."""
        with self._cond:
            return self._exports

    def spans(self) -> list[ReceivedSpan]:
        """A snapshot of every span received so far, in arrival order."""
        with self._cond:
            return list(self._spans)

    def clear(self) -> None:
        """Forget every span received so far."""
        with self._cond:
            self._spans.clear()
            self._exports = 0

    def summary(self) -> str:
        """Every received span, one per line (``"(no spans)"`` if none)."""
        spans = self.spans()
        if not spans:
            return "(no spans)"
        return "\n".join(s.summary() for s in spans)

    def wait_for(
        self, predicate: SpanPredicate, timeout: float = 120.0, *, count: int = 1
    ) -> list[ReceivedSpan]:
        """Wait until at least ``count`` received spans satisfy ``predicate``; return them all.

        Raises :class:`TimeoutError` listing every span received so far if that does not
        happen within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matching = [s for s in self._spans if predicate(s)]
                if len(matching) >= count:
                    return matching
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        raise TimeoutError(
            f"expected {count} matching span(s) within {timeout}s, got {len(matching)}; "
            f"{self.export_count} export call(s) received:\n{self.summary()}"
        )

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop the server (idempotent)."""
        self._server.stop(grace).wait()

    def __enter__(self) -> OtlpReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<OtlpReceiver {self.endpoint} spans={len(self.spans())}>"
