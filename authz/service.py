"""The Check handler: a short list of stage calls that always ends in a decision.

attributes -> identity -> (body) -> decide, inside one `authz.check` span; then metrics and
the decision log. Any failure becomes a deny with its reason.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

from authz._proto.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from authz.attributes import Attributes, from_check_request
from authz.decide import decide
from authz.decision import INTERNAL_ERROR, REQUEST_ERROR, Decision, deny
from authz.errors import RequestError
from authz.observability.decision_log import DecisionLog
from authz.observability.metrics import Metrics
from authz.observability.tracing import Tracing, trace_id_of
from authz.policy.compiler import CompiledConfig
from authz.response import to_check_response

_log = logging.getLogger("authz.service")


class Checker:
    """Decides Checks against the current config (swapped whole on reload)."""

    def __init__(
        self,
        config: CompiledConfig,
        tracing: Tracing | None = None,
        metrics: Metrics | None = None,
        log: DecisionLog | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.tracing = tracing or Tracing(self.metrics, endpoint=None, enabled=False)
        self.log = log or DecisionLog(None)

    def check(
        self, request: external_auth_pb2.CheckRequest, metadata: Mapping[str, str] | None = None
    ) -> Decision:
        """Decide one CheckRequest; `metadata` is the gRPC call's (for the trace parent)."""
        config = self.config  # one config for the whole check, even if a reload lands
        decision_id = uuid.uuid4().hex
        started = time.perf_counter()
        parent = self.tracing.parent(metadata or {}, request.attributes.request.http.headers)
        attrs: Attributes | None = None
        with self.tracing.check_span(parent) as span:
            try:
                attrs = from_check_request(request, config.limits)
                attrs = self._identity(config, attrs)
                self._body(config, attrs)
                with self.tracing.child("authz.evaluate"):
                    decision = decide(config, attrs, decision_id)
                self.metrics.detector_runs.inc(config.functions.request_runs())
                if decision.cached:
                    self.metrics.cache_hits.inc()
            except RequestError as exc:
                decision = deny(REQUEST_ERROR, f"malformed request: {exc}", decision_id, 400)
            except Exception:  # fail closed on bugs too; the traceback is for operators
                _log.exception("internal error while deciding %s", decision_id)
                decision = deny(INTERNAL_ERROR, "internal error", decision_id, status=500)
            self._annotate(span, decision, attrs)
        elapsed = time.perf_counter() - started
        counted = decision.would_deny or decision  # a dry run counts as it would have been
        self.metrics.observe(counted.policy, counted.rule, counted.outcome, counted.code, elapsed)
        if decision.would_deny is not None:
            self.metrics.dry_run_allowed.labels(decision.policy or "").inc()
        self.log.record(decision, attrs, trace_id_of(span), elapsed)
        return decision

    def _identity(self, config: CompiledConfig, attrs: Attributes) -> Attributes:
        if not config.needs_identity:
            return attrs
        with self.tracing.child("authz.identity") as span:
            identity = config.identity.resolve(attrs)
            span.set_attribute("authz.identity.method", identity.method)
            span.set_attribute("authz.identity.authenticated", identity.authenticated)
            if identity.error:
                span.set_attribute("authz.identity.error", identity.error)
        return dataclasses.replace(attrs, identity=identity)

    def _body(self, config: CompiledConfig, attrs: Attributes) -> None:
        if not config.parses_body or config.cache is not None:
            return  # with a cache, the body is parsed only on a miss, inside evaluation
        with self.tracing.child("authz.body") as span:
            parsed = attrs.body.parsed  # cached: later stages reuse it
            span.set_attribute("authz.body.bytes", len(attrs.body.raw))
            if parsed.error:
                span.set_attribute("authz.body.error", parsed.error)

    def _annotate(self, span: trace.Span, decision: Decision, attrs: Attributes | None) -> None:
        if not span.is_recording():
            return
        span.set_attribute("authz.decision", (decision.would_deny or decision).outcome)
        if decision.would_deny is not None:
            span.set_attribute("authz.dry_run", True)
            span.set_attribute("authz.enforced", decision.outcome)
        span.set_attribute("authz.decision_id", decision.decision_id)
        span.set_attribute("authz.policy", decision.policy or "")
        span.set_attribute("authz.rule", decision.rule or "")
        span.set_attribute("authz.reason", decision.code)
        span.set_attribute("authz.message", decision.reason)
        span.set_attribute("http.response.status_code", decision.status)
        if attrs is not None:
            span.set_attribute("http.request.method", attrs.request.method)
            span.set_attribute("url.path", attrs.request.path)
            if self.tracing.record_subject and attrs.identity.subject:
                span.set_attribute("enduser.id", attrs.identity.subject)
        if decision.code == INTERNAL_ERROR:
            span.set_status(trace.Status(trace.StatusCode.ERROR, decision.reason))


def check(config: CompiledConfig, request: external_auth_pb2.CheckRequest) -> Decision:
    """Decide one request with no tracing, metrics or log (for `authz check` and tests)."""
    return Checker(config).check(request)


class AuthorizationService(external_auth_pb2_grpc.AuthorizationServicer):
    """envoy.service.auth.v3.Authorization over a Checker."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    def Check(
        self, request: external_auth_pb2.CheckRequest, context: Any
    ) -> external_auth_pb2.CheckResponse:
        """Answer Envoy with the decision for this request."""
        metadata = None
        if self.checker.tracing.enabled:  # only the trace parent needs the call's metadata
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        return to_check_response(self.checker.check(request, metadata))
