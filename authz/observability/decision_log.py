"""The decision log: one JSON line per decision, secrets masked.

Always: time, trace_id, the decision record (decision_id, decision, status, policy, rule,
reason (stable code), message, and dry_run for a dry-run policy's would-be deny; see
authz/decision.py), subject, method, path, latency_ms, worker. Headers and a body excerpt
only when configured; then Authorization, cookies and API-key headers are masked and every
other value, like the body excerpt, has detector findings (secrets, personal data) redacted.
With `explain`, `selection` and `explain` as `authz check --explain` prints them (values
redacted the same way).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from authz.attributes import Attributes
from authz.decision import Decision, record
from authz.detectors import redact
from authz.policy.compiler import CompiledConfig

if TYPE_CHECKING:
    from authz.explain import Explainer
    from authz.observability.replay_record import Hasher

MASKED = "[MASKED]"
ALWAYS_MASKED = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)


@dataclass(frozen=True)
class LogOptions:
    """What goes into each line beyond the fixed fields."""

    headers: bool = False
    body_chars: int = 0
    subject: bool = True
    masked_headers: frozenset[str] = ALWAYS_MASKED
    replay: bool = False  # add a replayable record (sensitive values as salted hashes)
    explain: bool = False  # add why: the selection and each rule's parts (authz/explain.py)


class DecisionLog:
    """Writes decision lines to a stream (stdout) or a file; never raises into a Check."""

    def __init__(self, stream: IO[str] | None, options: LogOptions = LogOptions()) -> None:
        self.stream = stream
        self.options = options
        self._lock = threading.Lock()
        self.failures = 0
        # built (and their modules imported) only for the lines that carry them
        self._hasher: Hasher | None = None
        self._explainer: Explainer | None = None
        if options.replay:
            from authz.observability.replay_record import Hasher

            self._hasher = Hasher()
        if options.explain:
            from authz.explain import Explainer

            self._explainer = Explainer(redact=True)

    def entry(
        self,
        decision: Decision,
        attrs: Attributes | None,
        trace_id: str,
        latency_s: float,
        config: CompiledConfig | None = None,
    ) -> dict[str, Any]:
        """The record for one decision."""
        request = attrs.request if attrs else None
        subject = attrs.identity.subject if attrs and self.options.subject else None
        fields = record(decision)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            + f".{int(time.time() * 1000) % 1000:03d}Z",
            "decision_id": decision.decision_id,
            "trace_id": trace_id or None,
            **fields,
            "subject": subject or None,
            "method": request.method if request else None,
            "path": request.path if request else None,
            "latency_ms": round(latency_s * 1000, 3),
            "worker": os.getpid(),
        }
        if attrs is not None and self._hasher is not None:
            from authz.observability.replay_record import record as replay_record

            entry["replay"] = replay_record(
                attrs, self.options.masked_headers, self._hasher, config, self.options.subject
            )
        if attrs is not None and config is not None and self._explainer is not None:
            explained = self._explainer.explain(config, attrs, decision)
            entry["selection"] = explained.selection
            entry["explain"] = explained.rules
        if request is not None and self.options.headers:
            entry["headers"] = {
                name: MASKED if name in self.options.masked_headers else redact(value)
                for name, value in request.headers.items()
            }
        if attrs is not None and self.options.body_chars > 0:
            entry["body"] = redact(attrs.body.text[: self.options.body_chars])
        return entry

    def write(self, entry: dict[str, Any]) -> None:
        """Write one line built elsewhere (the response path's `phase: response` lines)."""
        if self.stream is None:
            return
        try:
            line = json.dumps(entry, default=str)
            with self._lock:
                self.stream.write(line + "\n")
                self.stream.flush()
        except Exception:  # a broken log sink must not change a decision
            self.failures += 1

    def record(
        self,
        decision: Decision,
        attrs: Attributes | None,
        trace_id: str,
        latency_s: float,
        config: CompiledConfig | None = None,
    ) -> None:
        """Write one line (`config`: the one that decided, for `explain`)."""
        if self.stream is None:
            return
        try:
            entry = self.entry(decision, attrs, trace_id, latency_s, config)
            line = json.dumps(entry, default=str)
            with self._lock:
                self.stream.write(line + "\n")
                self.stream.flush()
        except Exception:  # a broken log sink must not change a decision
            self.failures += 1
