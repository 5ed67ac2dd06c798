"""The OpenTelemetry SDK side of tracing: the span exporter and the propagators.

Imported only when tracing is on (authz/observability/tracing.py): the SDK and the OTLP
exporter cost a worker about 8 MiB that a config without a collector need not hold.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from authz.observability.metrics import Metrics

PROPAGATOR = CompositePropagator(
    [TraceContextTextMapPropagator(), B3MultiFormat(), B3SingleFormat()]
)


class CountingExporter(SpanExporter):
    """Wraps an exporter and counts the spans it fails to deliver."""

    def __init__(self, inner: SpanExporter, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        """Export; a failure (or an exception) counts every span of the batch as dropped."""
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result != SpanExportResult.SUCCESS:
            self.metrics.spans_dropped.inc(len(spans))
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


def provider(endpoint: str, metrics: Metrics) -> TracerProvider:
    """A tracer provider exporting in batches by OTLP/gRPC to `endpoint` (sampler from
    OTEL_TRACES_SAMPLER), counting undelivered spans."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    insecure = not endpoint.startswith("https://")
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=insecure, timeout=5)
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "authz")})
    built = TracerProvider(resource=resource)
    built.add_span_processor(
        BatchSpanProcessor(
            CountingExporter(exporter, metrics), max_queue_size=8192, schedule_delay_millis=500
        )
    )
    return built
