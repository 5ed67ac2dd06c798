"""Server-sent events, judged event by event as they pass, with a bounded hold-back.

An LLM streams its answer a few characters per event, so a credential can arrive split
across events (`"AKIA12"` then `"345678..."`); judged one event at a time, neither half is
a credential. So the stream keeps a window:

- `events.py` splits the bytes into events; `deltas.py` reads each event's *text*, what
  its dialect streams as the answer (and notes the finish reason, usage and tool calls);
- each event is judged as it arrives with `response.llm.text` = the last `hold_chars`
  characters already released + the text of every event not yet released (so a secret that
  began in an earlier event is whole there), and `response.body.text` the same for the raw
  events; `response.body.json` and `response.mcp` are this event's;
- after the events of a chunk are judged, the events are released except the shortest
  tail whose text holds at least `hold_chars` characters: what could be the start of a
  secret stays back until the next events show what follows (or the stream ends).

The bound: text of up to `hold_chars` characters split across any number of events never
reaches the client in part before it is judged whole (limits.stream_hold_chars, 256 by
default: any key format the detectors know, an email address, a card number). Held back
are at most that many characters plus the event that carries the last of them; an event
larger than limits.max_body_bytes, or a partial event growing past it, is unreadable.
Streams without answer text (MCP event streams, whose events are whole JSON-RPC messages)
hold nothing back.

Deny cuts the stream: the event that triggered it and every held event are replaced by one
final `event: error` whose data is `{"error": message, "decision_id": id}`, and nothing
after it reaches the client. Once a redact rule matches, every event is redacted as it is
released (whichever rule later events match), with the held text as look-ahead, so a
finding is judged with what follows it (`jane.doe@example.co` is not cut short before `m`
arrives): a finding that spans events is replaced in the first event it touches and removed
from the others, and every other string of a released event passes through redact().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authz.config.model import Limits
from authz.detectors import pii_findings, secret_findings
from authz.policy.response_rules import REDACT
from authz.response_path.deltas import StreamState, read_event, set_at
from authz.response_path.events import Event, EventParser, Path
from authz.response_path.judge import ALLOW, DENY, ResponseDecision
from authz.response_path.rewrite import redact_value
from authz.response_view import EMPTY_MCP, FIELDS, mcp_of

Judge = Callable[[dict[str, Any]], ResponseDecision]


@dataclass
class Step:
    """What to send for one chunk: `release` bytes, or (once) the stream is cut by `cut`."""

    release: bytes
    cut: ResponseDecision | None = None


class StreamJudge:
    """Judges a text/event-stream event by event (see the module docstring)."""

    def __init__(
        self,
        judge: Judge,
        fields: frozenset[str] | None,
        status: int,
        headers: dict[str, str],
        limits: Limits,
        hold_chars: int,
    ) -> None:
        self.judge = judge
        self.fields = set(FIELDS) if fields is None else fields
        self.status = status
        self.headers = headers
        self.limits = limits
        self.hold_chars = hold_chars
        self.parser = EventParser(limits.max_body_bytes)
        self.state = StreamState()
        self.pending: list[Event] = []
        self.context = ""  # the last hold_chars characters of released text
        self.raw_context = ""  # the same, of the released raw events
        self.events = 0
        self.redactions = 0
        self.redacting = False  # a redact rule matched: released events are redacted
        self.held_max = 0
        self.decision: ResponseDecision | None = None  # the most severe so far
        self.cut: ResponseDecision | None = None
        self.passthrough = False  # unreadable, and the policy allows that

    def feed(self, chunk: bytes, end: bool) -> Step:
        """Take one body chunk; return what may be sent now."""
        if self.cut is not None:
            return Step(b"")
        if self.passthrough:
            return Step(chunk)
        self.state.size += len(chunk)
        events = self.parser.feed(chunk, end)  # raises Unreadable
        for event in events:
            read_event(event, self.state, self.limits)  # raises Unreadable
            self.pending.append(event)
            self.events += 1
            if event.data is None:
                continue  # a comment or a bare field: nothing to judge
            decision = self.judge(self._response(event))
            self._note(decision)
            if decision.effect == DENY:
                self.cut = decision
                self.pending = []
                return Step(b"", decision)
            if decision.effect == REDACT:
                # From here on every event passes through redaction as it is released,
                # whichever rule later events match: what is held may hold the finding.
                self.redacting = True
        return Step(self._release(end))

    def unreadable(self, decision: ResponseDecision, chunk: bytes) -> Step:
        """The stream became unreadable at `chunk`: cut it, or let the rest pass unjudged."""
        self._note(decision)
        if decision.effect == DENY:
            self.cut = decision
            self.pending = []
            return Step(b"", decision)
        self.passthrough = True
        held = b"".join(e.encoded() for e in self.pending)
        self.pending = []
        return Step(held + self.parser._buffer + chunk)

    def _note(self, decision: ResponseDecision) -> None:
        rank = {ALLOW: 0, REDACT: 1, DENY: 2}
        counted = decision.counted
        if self.decision is None or rank[counted.effect] > rank[self.decision.counted.effect]:
            self.decision = decision
        elif counted.effect == ALLOW and self.decision.counted.effect == ALLOW:
            self.decision = decision  # the latest allow (its rule) describes the stream

    def _window(self) -> str:
        return self.context + "".join(e.text for e in self.pending)

    def _response(self, event: Event) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "status" in self.fields:
            out["status"] = self.status
        if "headers" in self.fields:
            out["headers"] = self.headers
        if "body" in self.fields:
            raw = b"".join(e.encoded() for e in self.pending)
            out["body"] = {
                "text": self.raw_context + raw.decode("utf-8", errors="replace"),
                "json": event.value,
                "size": self.state.size,
                "truncated": False,
            }
        if "llm" in self.fields:
            out["llm"] = self.state.done.as_cel(self._window())
        if "mcp" in self.fields:
            out["mcp"] = mcp_of(event.value) or dict(EMPTY_MCP)
        return {"response": out}

    def _redact(self, upto: int) -> None:
        """Redact the events about to be released (`pending[:upto]`), with the text held
        after them as look-ahead: a finding is judged with what follows it, so a prefix that
        is itself a finding (`jane.doe@example.co` before `m` arrives) is never cut short.
        A finding that runs from them into held events is replaced in the first event it
        touches and removed from the others; every other string of the released events
        passes through redact()."""
        window = self._window()
        spans: list[tuple[int, int, str]] = []
        for finding in sorted(
            secret_findings(window) + pii_findings(window), key=lambda f: (f.start, -f.end)
        ):
            if spans and finding.start < spans[-1][1]:
                continue
            if finding.end > len(self.context):
                spans.append((max(finding.start, len(self.context)), finding.end, finding.kind))
        released_end = len(self.context) + sum(len(e.text) for e in self.pending[:upto])
        # Findings that start in the held text are left for when it is released.
        spans = [span for span in spans if span[0] < released_end]
        position = len(self.context)
        for index, event in enumerate(self.pending):
            rewritten: list[tuple[Path, str]] = []
            for path, text in event.slots:
                start, end = position, position + len(text)
                position = end
                new = _cut(text, start, [s for s in spans if s[0] < end and s[1] > start])
                if new != text:
                    event.changed = True
                    if path:
                        set_at(event.value, path, new)
                    else:
                        event.data = new  # the data of an event that is not JSON
                rewritten.append((path, new))
            event.slots = rewritten
            if index < upto and isinstance(event.value, dict | list):
                cleaned = redact_value(event.value)
                for path, text in event.slots:  # the answer text: judged in the window
                    if path:
                        set_at(cleaned, path, text)
                if cleaned != event.value:
                    event.value, event.changed = cleaned, True
        self.redactions += 1

    def _release(self, end: bool) -> bytes:
        # Events before `split` go; from it on they stay: at the end, or with no answer
        # text among them, everything goes.
        split = len(self.pending)
        if not end and any(e.slots for e in self.pending):
            held = 0
            while split > 0 and held < self.hold_chars:
                split -= 1
                held += len(self.pending[split].text)
        if self.redacting and split:
            self._redact(split)
        released, self.pending = self.pending[:split], self.pending[split:]
        self.held_max = max(self.held_max, sum(len(e.text) for e in self.pending))
        out = b"".join(e.encoded() for e in released)
        if released:
            text = self.context + "".join(e.text for e in released)
            self.context = text[-self.hold_chars :] if self.hold_chars else ""
            raw = self.raw_context + out.decode("utf-8", errors="replace")
            self.raw_context = raw[-self.hold_chars :] if self.hold_chars else ""
        return out


def _cut(text: str, start: int, spans: list[tuple[int, int, str]]) -> str:
    """`text` (at `start` in the window) with the parts inside `spans` replaced: a span that
    begins in it by [KIND], the rest of a span that began earlier by nothing."""
    out, position = [], start
    for span_start, span_end, kind in spans:
        begin, stop = max(span_start, start), min(span_end, start + len(text))
        out.append(text[position - start : begin - start])
        if span_start >= start:
            out.append(f"[{kind.upper()}]")
        position = stop
    out.append(text[position - start :])
    return "".join(out)


def error_event(decision: ResponseDecision, body: bytes) -> bytes:
    """The final event of a stream that is cut."""
    return b"event: error\ndata: " + body + b"\n\n"
