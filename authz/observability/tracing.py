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
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace

from authz.decision import Decision, record
from authz.observability.metrics import Metrics

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


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
        from authz.observability import otlp  # the SDK: only when tracing is on

        self._propagator = otlp.PROPAGATOR
        self.provider = otlp.provider(str(endpoint), metrics)
        self.tracer = self.provider.get_tracer("authz")

    def parent(
        self, metadata: Mapping[str, str], headers: Mapping[str, str]
    ) -> otel_context.Context:
        """Envoy's context from the gRPC metadata, else from the request's headers."""
        if not self.enabled:
            return otel_context.Context()  # nothing to parent: skip the header parsing
        from_metadata = self._propagator.extract(metadata)
        if _valid(from_metadata):
            return from_metadata
        return self._propagator.extract(headers)

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
