"""The Check handler: a short list of stage calls that always ends in a decision.

attributes -> identity -> (body) -> decide, inside one `authz.check` span; then metrics and
the decision log. Any failure becomes a deny with its reason. A check still running past its
time budget stops at the next stage boundary or detector call with a `check_timeout` deny
(every stage is bounded on its own, so the overrun is too).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Generator, Mapping
from typing import Any, TypeVar

from opentelemetry import trace

from authz._proto.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from authz.attributes import Attributes, from_check_request
from authz.context import RequestContext
from authz.decide import await_steps, decide_steps, run_steps
from authz.decision import CHECK_TIMEOUT, INTERNAL_ERROR, REQUEST_ERROR, Decision, deny
from authz.detectors.classifier import ModelPending
from authz.errors import CheckTimeout, RequestError
from authz.functions import DetectorMemo
from authz.identity.jwks import RAISE, SKIP, KeysPending
from authz.identity.model import Identity
from authz.observability.decision_log import DecisionLog
from authz.observability.metrics import Metrics
from authz.observability.tracing import Tracing, span_attributes, trace_id_of
from authz.policy.compiler import CompiledConfig
from authz.response import to_check_response

_log = logging.getLogger("authz.service")
T = TypeVar("T")
R = TypeVar("R")


class Checker:
    """Decides Checks against the current config snapshot. `swap` is the one way to replace
    it (hot reload): a check reads the snapshot once when it starts and keeps it to the end,
    so a swap never mixes two configs inside one check."""

    def __init__(
        self,
        config: CompiledConfig,
        tracing: Tracing | None = None,
        metrics: Metrics | None = None,
        log: DecisionLog | None = None,
        budget_seconds: float | None = None,
    ) -> None:
        self._config = config
        self._swapping = threading.Lock()
        self.metrics = metrics or Metrics()
        self.tracing = tracing or Tracing(self.metrics, endpoint=None, enabled=False)
        self.log = log or DecisionLog(None)
        self.budget_seconds = budget_seconds  # None: no time budget (authz check, tests)

    @property
    def config(self) -> CompiledConfig:
        """The current snapshot (read it once per check or response, then keep it)."""
        return self._config

    def swap(self, config: CompiledConfig) -> CompiledConfig:
        """Serve `config` from the next check on; return the snapshot it replaces (checks
        in flight finish on that one)."""
        with self._swapping:  # two reloads at once: each gets back the one it replaced
            retired, self._config = self._config, config
        return retired

    def check(
        self,
        request: external_auth_pb2.CheckRequest,
        metadata: Mapping[str, str] | None = None,
        config: CompiledConfig | None = None,
    ) -> Decision:
        """Decide one CheckRequest; `metadata` is the gRPC call's (for the trace parent),
        `config` the snapshot to decide on (default: the current one).
        A key fetch the token needs, or a model's scoring, blocks this thread (bounded)."""
        return run_steps(self._steps(request, metadata, config or self._config))

    async def check_async(
        self,
        request: external_auth_pb2.CheckRequest,
        metadata: Mapping[str, str] | None = None,
        config: CompiledConfig | None = None,
    ) -> Decision:
        """As `check`, on an event loop: a key fetch or a model's scoring is awaited, so
        other checks go on."""
        return await await_steps(self._steps(request, metadata, config or self._config))

    def _steps(
        self,
        request: external_auth_pb2.CheckRequest,
        metadata: Mapping[str, str] | None,
        config: CompiledConfig,
    ) -> Generator[KeysPending | ModelPending, None, Decision]:
        """The check on one snapshot, yielding while the token's keys are fetched or a
        model scores."""
        ctx = RequestContext(uuid.uuid4().hex, config)
        decision_id = ctx.decision_id
        started = time.perf_counter()
        budget = _Budget(started, self.budget_seconds, ctx.memo)
        parent = self.tracing.parent(metadata or {}, request.attributes.request.http.headers)
        with self.tracing.check_span(parent) as span:
            try:
                attrs = ctx.attrs = from_check_request(request, config.limits)
                budget.check("identity")
                attrs = ctx.attrs = yield from budget.waiting(self._identity(config, attrs))
                budget.check("body")
                self._body(config, attrs)
                budget.check("evaluation")
                budget.arm()  # detectors look before each run
                with self.tracing.child("authz.evaluate"):
                    decision = yield from budget.waiting(decide_steps(ctx))
                self.metrics.detector_runs.inc(ctx.memo.scans())
                if decision.cached:
                    self.metrics.cache_hits.inc()
            except RequestError as exc:
                decision = deny(REQUEST_ERROR, f"malformed request: {exc}", decision_id, 400)
            except CheckTimeout as exc:
                budget = f"{(self.budget_seconds or 0) * 1000:.0f} ms"
                decision = deny(CHECK_TIMEOUT, f"{exc} ({budget})", decision_id)
            except Exception:  # fail closed on bugs too; the traceback is for operators
                _log.exception("internal error while deciding %s", decision_id)
                decision = deny(INTERNAL_ERROR, "internal error", decision_id, status=500)
            self._annotate(span, decision, ctx.attrs)
        elapsed = time.perf_counter() - started
        counted = decision.would_deny or decision  # a dry run counts as it would have been
        self.metrics.observe(counted.policy, counted.rule, counted.outcome, counted.reason, elapsed)
        if decision.would_deny is not None:
            self.metrics.dry_run_allowed.labels(decision.policy or "").inc()
        self.log.record(decision, ctx.attrs, trace_id_of(span), elapsed, config)
        return decision

    def _identity(
        self, config: CompiledConfig, attrs: Attributes
    ) -> Generator[KeysPending, None, Attributes]:
        if not config.needs_identity:
            return attrs
        with self.tracing.child("authz.identity") as span:
            identity = _resolve(config, attrs, RAISE)
            if isinstance(identity, KeysPending):
                yield identity  # the caller waits, bounded; then take what is there
                identity = _resolve(config, attrs, SKIP)
            if not isinstance(identity, Identity):
                raise RuntimeError("a key fetch was asked for twice in one check")
            span.set_attribute("authz.identity.method", identity.method)
            span.set_attribute("authz.identity.authenticated", identity.authenticated)
            if identity.error:
                span.set_attribute("authz.identity.error", identity.error)
        return attrs.with_identity(identity)

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
        for name, value in span_attributes(decision).items():
            span.set_attribute(name, value)
        if attrs is not None:
            span.set_attribute("http.request.method", attrs.request.method)
            span.set_attribute("url.path", attrs.request.path)
            if self.tracing.record_subject and attrs.identity.subject:
                span.set_attribute("enduser.id", attrs.identity.subject)
        if decision.reason == INTERNAL_ERROR:
            span.set_status(trace.Status(trace.StatusCode.ERROR, decision.message))


class _Budget:
    """A check's time budget: its deadline moves on by the time the check spends waiting
    (for a token's keys, for a model's score), so the budget measures its own work, and is
    handed again to the request's detector memo whenever the check resumes."""

    __slots__ = ("deadline", "memo")

    def __init__(self, started: float, seconds: float | None, memo: DetectorMemo) -> None:
        self.deadline = started + seconds if seconds else None
        self.memo = memo

    def check(self, stage: str) -> None:
        """Raise CheckTimeout when the budget is spent before `stage`."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise CheckTimeout(f"check time budget spent before {stage}")

    def arm(self) -> None:
        """Let the detectors see the deadline (they stop before a run past it)."""
        self.memo.deadline = self.deadline

    def waiting(self, steps: Generator[T, None, R]) -> Generator[T, None, R]:
        """Run `steps`, not counting the time spent waiting at each of its yields."""
        try:
            pending = next(steps)
            while True:
                paused = time.perf_counter()
                yield pending
                if self.deadline is not None:
                    self.deadline += time.perf_counter() - paused
                    self.arm()
                pending = steps.send(None)
        except StopIteration as done:
            return done.value


def _resolve(config: CompiledConfig, attrs: Attributes, mode: str) -> Identity | KeysPending:
    try:
        return config.identity.resolve(attrs, mode)
    except KeysPending as pending:
        return pending


def check(config: CompiledConfig, request: external_auth_pb2.CheckRequest) -> Decision:
    """Decide one request with no tracing, metrics or log (for `authz check` and tests)."""
    return Checker(config).check(request)


def _trace_metadata(checker: Checker, context: Any) -> dict[str, str] | None:
    if not checker.tracing.enabled:  # only the trace parent needs the call's metadata
        return None
    return {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}


class AuthorizationService(external_auth_pb2_grpc.AuthorizationServicer):
    """envoy.service.auth.v3.Authorization over a Checker, for a thread-pool server."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    def Check(
        self, request: external_auth_pb2.CheckRequest, context: Any
    ) -> external_auth_pb2.CheckResponse:
        """Answer Envoy with the decision for this request."""
        config = self.checker.config  # the deny body follows the config that decided
        decision = self.checker.check(request, _trace_metadata(self.checker, context), config)
        return to_check_response(decision, config.deny_body)


class AsyncAuthorizationService(external_auth_pb2_grpc.AuthorizationServicer):
    """envoy.service.auth.v3.Authorization over a Checker, for grpc.aio."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.in_flight = 0  # for the drain: the loop takes calls one at a time
        self.started = 0

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: Any
    ) -> external_auth_pb2.CheckResponse:
        """Answer Envoy with the decision for this request."""
        self.in_flight += 1
        self.started += 1
        try:
            config = self.checker.config  # the deny body follows the config that decided
            metadata = _trace_metadata(self.checker, context)
            decision = await self.checker.check_async(request, metadata, config)
            return to_check_response(decision, config.deny_body)
        finally:
            self.in_flight -= 1
