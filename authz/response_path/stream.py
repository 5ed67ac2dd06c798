"""One ext_proc stream (one HTTP request and its response) as a state machine, no gRPC.

Envoy's ext_proc filter opens a stream per request and sends, in order:

1. `request_headers`, with the dynamic metadata ext_authz left (`metadata_options`
   forwards the `envoy.filters.http.ext_authz` namespace): the `policy` that allowed the
   request and its `decision_id`. Here the request's attributes are rebuilt from those
   headers and that metadata (`request.*`, `metadata`, and `identity` resolved again from
   the same credentials; the request body, the peers and the route's context extensions
   do not come, so response rules cannot read them). The reply asks only for what the
   policy's response rules need (`mode_override`): nothing when it has none, the response
   headers alone when they read only `response.status`/`response.headers`, else the body
   too, and then `accept-encoding` is removed from the request so the upstream answers in
   plain text.
2. `response_headers`: judged now when the rules need no body; else the body mode is
   chosen: streamed for `text/event-stream`, buffered for anything else.
3. `response_body`: the whole body once (buffered), or chunk by chunk (streamed).

Each response gets one decision (`ResponseDecision`), recorded once: a decision-log line
with `phase: response` and the request's `decision_id`, the counter
`authz_response_decisions_total{policy,rule,decision}`, and the span `authz.response`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from opentelemetry import trace

from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from authz.attributes import Attributes, from_check_request
from authz.decision import DEFAULT, REQUEST_ERROR
from authz.errors import RequestError
from authz.functions import DetectorMemo
from authz.identity.jwks import RAISE, SKIP, KeysPending
from authz.identity.model import Identity
from authz.observability.tracing import trace_id_of
from authz.policy.compiler import CompiledConfig, CompiledPolicy
from authz.policy.response_rules import REDACT, ResponseRules
from authz.response_path.events import Unreadable
from authz.response_path.judge import (
    ALLOW,
    DENY,
    ResponseDecision,
    deny_body,
    internal_error,
    judge,
    unknown_policy,
    unreadable,
    withheld,
)
from authz.response_path.record import log_entry, span_attributes, stream_summary
from authz.response_path.replies import (
    BUFFER_BODY,
    EXT_AUTHZ,
    HEADERS_ONLY,
    NO_BODY,
    SKIP_RESPONSE,
    STREAM_BODY,
    Mode,
    body_reply,
    check_request,
    continue_headers,
    header,
    headers_of,
    immediate,
    rule_headers,
)
from authz.response_path.rewrite import redact_body
from authz.response_path.sse import StreamJudge, error_event
from authz.response_view import (
    ResponseView,
    declares_json,
    is_event_stream,
    media_type,
)

if TYPE_CHECKING:
    from authz.service import Checker

_log = logging.getLogger("authz.response_path")


def _resolve(config: CompiledConfig, attrs: Attributes, mode: str) -> Identity | KeysPending:
    try:
        return config.identity.resolve(attrs, mode)
    except KeysPending as pending:
        return pending


class ResponseStream:
    """The state of one ext_proc stream. `handle` answers each message in turn; it yields
    a KeysPending when a token's keys are being fetched (the driver waits, then resumes)."""

    def __init__(self, checker: Checker, call_metadata: Mapping[str, str] | None) -> None:
        self.checker = checker
        self.call_metadata = call_metadata or {}
        self.config: CompiledConfig | None = None
        self.policy: CompiledPolicy | None = None
        self.rules: ResponseRules | None = None
        self.decision_id = ""
        self.policy_name = ""
        self.configured_mode = Mode.BUFFERED
        self.request_headers: dict[str, str] = {}
        self.variables: dict[str, Any] = {}
        self.early: ResponseDecision | None = None  # decided before the response came
        self.status = 0
        self.headers: dict[str, str] = {}
        self.streamed = False  # the response headers went on to the client already
        self.event_stream: StreamJudge | None = None
        self.view: ResponseView | None = None
        self.chunks: list[bytes] = []  # a non-event body arriving in pieces
        self.size = 0
        self.seconds = 0.0  # time spent judging this response
        self.span: trace.Span | None = None
        self.recorded = False
        self.cut = False  # denied: nothing more of the body goes out
        self.deny_include: tuple[str, ...] = ()

    # -- the phases -------------------------------------------------------------------------

    def handle(
        self, request: pb.ProcessingRequest
    ) -> Generator[KeysPending, None, pb.ProcessingResponse]:
        """The reply to one message of the stream."""
        started = time.perf_counter()
        kind = request.WhichOneof("request")
        try:
            if kind == "request_headers":
                return (yield from self._request_headers(request))
            if kind == "response_headers":
                return self._response_headers(request.response_headers)
            if kind == "response_body":
                return self._response_body(request.response_body)
            if kind == "response_trailers":
                return pb.ProcessingResponse(response_trailers=pb.TrailersResponse())
            if kind == "request_trailers":
                return pb.ProcessingResponse(request_trailers=pb.TrailersResponse())
            return pb.ProcessingResponse(request_body=pb.BodyResponse())
        finally:
            self.seconds += time.perf_counter() - started

    def _request_headers(
        self, request: pb.ProcessingRequest
    ) -> Generator[KeysPending, None, pb.ProcessingResponse]:
        if request.HasField("protocol_config"):
            self.configured_mode = request.protocol_config.response_body_mode
        self.config = config = self.checker.config  # one config for the whole response
        self.deny_include = config.deny_body
        self.request_headers = headers_of(request.request_headers)
        namespace = request.metadata_context.filter_metadata.get(EXT_AUTHZ)
        fields = json_format.MessageToDict(namespace) if namespace is not None else {}
        self.policy_name = str(fields.get("policy") or "")
        self.decision_id = str(fields.get("decision_id") or "") or uuid.uuid4().hex
        if not self.policy_name:
            return continue_headers(True, SKIP_RESPONSE)  # authz did not judge this request
        self.policy = config.policy_named(self.policy_name)
        if self.policy is None:
            self.early = unknown_policy(self.policy_name, self.decision_id)
            return continue_headers(True, HEADERS_ONLY)
        self.rules = self.policy.response
        if self.rules is None:
            return continue_headers(True, SKIP_RESPONSE)
        yield from self._request_variables(request, config, self.rules)
        if not self.rules.needs_body:
            return continue_headers(True, HEADERS_ONLY)
        # The body must be readable: ask the upstream for it uncompressed.
        return continue_headers(True, None, pb.HeaderMutation(remove_headers=["accept-encoding"]))

    def _request_variables(
        self, request: pb.ProcessingRequest, config: CompiledConfig, rules: ResponseRules
    ) -> Generator[KeysPending, None, None]:
        """The request roots the rules read, rebuilt from the stream."""
        reads = rules.request_reads
        if not reads:
            return
        try:
            attrs = from_check_request(check_request(request), config.limits)
        except RequestError as exc:
            self.early = withheld(
                REQUEST_ERROR, f"malformed request: {exc}", self.decision_id, self.policy_name
            )
            return
        if any(root == "identity" for root, _ in reads):
            identity = _resolve(config, attrs, RAISE)
            if isinstance(identity, KeysPending):
                yield identity  # the driver waits, bounded; then take what is there
                identity = _resolve(config, attrs, SKIP)
            if isinstance(identity, Identity):
                attrs = attrs.with_identity(identity)
        self.variables = attrs.variables(reads)

    def _response_headers(self, message: pb.HttpHeaders) -> pb.ProcessingResponse:
        if self.config is None or (self.rules is None and self.early is None):
            return continue_headers(False, SKIP_RESPONSE)  # no request phase: a local reply
        self._start_span()
        self.headers = headers_of(message)
        status = self.headers.get(":status", "")
        self.status = int(status) if status.isdigit() else 0
        if self.early is not None:
            return self._headers_decided(self.early)
        assert self.rules is not None
        if not self.rules.needs_body or message.end_of_stream:
            return self._headers_decided(self._judge_buffered(b""))
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            why = f"content-encoding {encoding}"
            return self._headers_decided(self._unreadable(why))
        # Events are judged as they pass; anything else is judged whole, before the client
        # has the status (the route's configured mode is overridden where it differs).
        if is_event_stream(media_type(self.headers)):
            self.event_stream = self._stream_judge()
            self.streamed = True
            stream = self.configured_mode == Mode.STREAMED
            return continue_headers(False, None if stream else STREAM_BODY)
        buffer = self.configured_mode == Mode.BUFFERED
        return continue_headers(False, None if buffer else BUFFER_BODY)

    def _headers_decided(self, decision: ResponseDecision) -> pb.ProcessingResponse:
        """A decision made at the response headers: deny now, or pass with its headers."""
        self._record(decision)
        if decision.effect == DENY:
            return immediate(decision, self.deny_include)
        mutation = rule_headers(decision)
        return continue_headers(False, NO_BODY, mutation)

    def _response_body(self, message: pb.HttpBody) -> pb.ProcessingResponse:
        if self.rules is None:
            return body_reply()  # nothing to judge (Envoy sent it anyway: no mode_override)
        if self.event_stream is not None:
            return self._event_chunk(message)
        if self.recorded:
            # Decided already: at the headers, or a streamed body that was cut (nothing
            # more of it) or unreadable and allowed (the rest passes as it comes).
            return body_reply(clear=True) if self.cut else body_reply()
        self.size += len(message.body)
        raw = b"".join([*self.chunks, message.body])
        if not message.end_of_stream:
            # Streamed although buffering was asked for: the client has the headers. Keep
            # the pieces (bounded), send nothing, and answer with the whole at the end.
            self.streamed = True
            if self.configured_mode == Mode.BUFFERED_PARTIAL:
                why = "a partial body (BUFFERED_PARTIAL)"
                return self._body_decided(self._unreadable(why), raw)
            if self.size > self._limit():
                return self._body_decided(self._unreadable(self._too_large()), raw)
            self.chunks.append(message.body)
            return body_reply(clear=True)
        self.chunks = []
        if len(raw) > self._limit():
            return self._body_decided(self._unreadable(self._too_large()), raw)
        return self._body_decided(self._judge_buffered(raw), raw)

    def _event_chunk(self, message: pb.HttpBody) -> pb.ProcessingResponse:
        """A piece of a text/event-stream: judged event by event, held back, or cut."""
        judge = self.event_stream
        assert judge is not None
        try:
            step = judge.feed(message.body, message.end_of_stream)
        except Unreadable as exc:
            step = judge.unreadable(self._unreadable(str(exc)), message.body)
        except Exception:
            _log.exception("internal error while judging a stream (%s)", self.decision_id)
            step = judge.unreadable(internal_error(self.decision_id, self.policy_name), b"")
        if step.cut is not None:
            # The client has the status: the stream ends with an error event, and every
            # later chunk is dropped (StreamJudge releases nothing once cut).
            self._record(step.cut)
            return body_reply(error_event(step.cut, deny_body(step.cut, self.deny_include)))
        if message.end_of_stream and not self.recorded:
            self._record(judge.decision or self._default())
        if step.release == message.body:
            return body_reply()
        return body_reply(step.release, clear=not step.release)

    def _body_decided(self, decision: ResponseDecision, raw: bytes) -> pb.ProcessingResponse:
        """The reply to a whole body (`raw`: all of it so far): the deny body, the redacted
        body, or the body as it came, with the rule's response headers and a content-length
        that fits."""
        body = raw
        if decision.effect == REDACT:
            is_json = self.view is not None and self.view.parsed.error is None
            cleaned = redact_body(raw, is_json)
            if cleaned is None:
                why = "a body that is not UTF-8 cannot be redacted"
                decision = withheld(
                    decision.reason, why, self.decision_id, self.policy_name, decision.rule
                )
            else:
                body = cleaned
        self._record(decision)
        if decision.effect == DENY:
            self.cut = True
            if not self.streamed:
                return immediate(decision, self.deny_include)
            return body_reply(deny_body(decision, self.deny_include))  # the status has gone
        mutation = rule_headers(decision)
        if self.streamed:  # the client has the headers; it gets the whole body now
            return body_reply(body, clear=not body)
        if "content-length" in self.headers:
            # The length of what the client gets (Envoy drops the upstream's on a route
            # configured STREAMED, even when authz switched it to BUFFERED).
            mutation.set_headers.append(header("content-length", str(len(body))))
        if body != raw:
            return body_reply(body, mutation=mutation)
        return body_reply(mutation=mutation)

    # -- judging ----------------------------------------------------------------------------

    def _limit(self) -> int:
        assert self.config is not None
        return self.config.limits.max_body_bytes

    def _too_large(self) -> str:
        return f"body larger than max_body_bytes ({self._limit()})"

    def _default(self) -> ResponseDecision:
        return ResponseDecision(
            ALLOW, DEFAULT, "no response rule matched", self.decision_id, self.policy_name
        )

    def _unreadable(self, why: str) -> ResponseDecision:
        assert self.rules is not None
        return unreadable(self.rules, why, self.decision_id, self.policy_name)

    def _run(self, response: dict[str, Any]) -> ResponseDecision:
        assert self.config is not None and self.policy is not None
        variables = {**self.variables, **response}
        memo = DetectorMemo()
        try:
            decision = judge(self.config, self.policy, variables, self.decision_id, memo)
        except Exception:  # fail closed on bugs too; the traceback is for operators
            _log.exception("internal error while judging a response (%s)", self.decision_id)
            return internal_error(self.decision_id, self.policy_name)
        self.checker.metrics.detector_runs.inc(memo.scans())
        return decision

    def _judge_buffered(self, raw: bytes) -> ResponseDecision:
        """One judgement over a whole response."""
        assert self.config is not None and self.rules is not None
        view = self.view = ResponseView(self.status, self.headers, raw, False, self.config.limits)
        if raw and declares_json(view.content_type) and view.parsed.error is not None:
            return self._unreadable(f"declared JSON, but {view.parsed.error}")
        return self._run({"response": view.as_cel(self.rules.fields)})

    def _stream_judge(self) -> StreamJudge:
        assert self.config is not None and self.rules is not None
        limits = self.config.limits
        hold = limits.stream_hold_chars
        return StreamJudge(self._run, self.rules.fields, self.status, self.headers, limits, hold)

    # -- outputs ----------------------------------------------------------------------------

    def _start_span(self) -> None:
        tracing = self.checker.tracing
        if not tracing.enabled or self.span is not None:
            return
        parent = tracing.parent(self.call_metadata, self.request_headers)
        self.span = tracing.tracer.start_span(
            "authz.response", context=parent, kind=trace.SpanKind.SERVER
        )

    def _record(self, decision: ResponseDecision) -> None:
        """Count, log and trace the response's decision, once."""
        if self.recorded:
            return
        self.recorded = True
        counted = decision.counted
        self.checker.metrics.response_decisions.labels(
            decision.policy, counted.rule or "", counted.effect
        ).inc()
        trace_id = ""
        if self.span is not None:
            for name, value in span_attributes(decision, self.status).items():
                self.span.set_attribute(name, value)
            trace_id = trace_id_of(self.span)
            self.span.end()
        entry = log_entry(decision, trace_id, self.status, self.request_headers, self.seconds)
        if self.event_stream is not None:
            entry["stream"] = stream_summary(self.event_stream)
        self.checker.log.write(entry)

    def close(self) -> None:
        """The stream ended (or was cancelled) before a decision: record what is known."""
        if self.recorded or self.event_stream is None or self.config is None:
            if self.span is not None and not self.recorded:
                self.span.end()
            return
        self._record(self.event_stream.decision or self._default())
