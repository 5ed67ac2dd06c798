"""OpenTelemetry tracing: one `authz.check` span per Check, parented to Envoy's span.

The parent comes from the gRPC metadata of the Check call when it carries one (Envoy sends
it for ext_authz when it traces), else from the HTTP request's own headers (W3C
traceparent/tracestate, B3 single and multi). Spans are exported in batches by OTLP/gRPC on
a background thread; an unreachable collector drops spans (counted) and never delays or
changes a decision. The standard OTEL_* environment variables apply (endpoint, service
name, sampler, headers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
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

from authz.decision import Decision, record
from authz.observability.metrics import Metrics

PROPAGATOR = CompositePropagator(
    [TraceContextTextMapPropagator(), B3MultiFormat(), B3SingleFormat()]
)
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


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


_NO_SPAN = nullcontext(trace.INVALID_SPAN)  # reusable: entering it does nothing


def _valid(ctx: otel_context.Context) -> bool:
    return trace.get_current_span(ctx).get_span_context().is_valid


class Tracing:
    """The tracer for one process; a no-op tracer when no endpoint is configured."""

    def __init__(
        self,
        metrics: Metrics,
        endpoint: str | None = None,
        record_subject: bool = True,
        enabled: bool = True,
    ) -> None:
        self.record_subject = record_subject
        endpoint = endpoint or next(
            (os.environ[v] for v in ENDPOINT_VARIABLES if os.environ.get(v)), None
        )
        disabled = os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true"
        self.enabled = enabled and bool(endpoint) and not disabled
        self.provider: TracerProvider | None = None
        if not self.enabled:
            self.tracer: trace.Tracer = trace.NoOpTracer()
            return
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = not str(endpoint).startswith("https://")
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=insecure, timeout=5)
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "authz")})
        self.provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER
        self.provider.add_span_processor(
            BatchSpanProcessor(
                CountingExporter(exporter, metrics), max_queue_size=8192, schedule_delay_millis=500
            )
        )
        self.tracer = self.provider.get_tracer("authz")

    def parent(
        self, metadata: Mapping[str, str], headers: Mapping[str, str]
    ) -> otel_context.Context:
        """Envoy's context from the gRPC metadata, else from the request's headers."""
        if not self.enabled:
            return otel_context.Context()  # nothing to parent: skip the header parsing
        from_metadata = PROPAGATOR.extract(metadata)
        if _valid(from_metadata):
            return from_metadata
        return PROPAGATOR.extract(headers)

    def check_span(self, parent: otel_context.Context) -> AbstractContextManager[trace.Span]:
        """The `authz.check` span, current for the duration of the block."""
        if not self.enabled:
            return _NO_SPAN  # no tracer work at all on the hot path
        return self.tracer.start_as_current_span(
            "authz.check", context=parent, kind=trace.SpanKind.SERVER
        )

    def child(self, name: str) -> AbstractContextManager[trace.Span]:
        """A child span of the current one."""
        if not self.enabled:
            return _NO_SPAN
        return self.tracer.start_as_current_span(name)

    def shutdown(self) -> None:
        """Flush what is queued (bounded) and stop the exporter."""
        if self.provider is not None:
            self.provider.force_flush(2000)
            self.provider.shutdown()


def trace_id_of(span: trace.Span) -> str:
    """The span's trace id as 32 hex characters, or '' when not recording."""
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def span_attributes(decision: Decision) -> dict[str, str | int | bool]:
    """The decision record as `authz.*` span attributes. A dry-run policy's would-be deny
    shows as `authz.decision=deny` with `authz.dry_run=true` and `authz.enforced=allow`."""
    fields = record(decision)
    would = fields.pop("dry_run", None)
    attributes: dict[str, str | int | bool] = {
        f"authz.{name}": "" if value is None else value
        for name, value in fields.items()
        if name != "status"
    }
    attributes["http.response.status_code"] = decision.status
    if would is not None:
        attributes["authz.decision"] = would["decision"]
        attributes["authz.dry_run"] = True
        attributes["authz.enforced"] = decision.outcome
    return attributes
