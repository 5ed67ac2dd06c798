"""Server-sent events, judged event by event as they pass, with a bounded hold-back.

An LLM streams its answer a few characters per event, so a credential can arrive split
across events (`"AKIA12"` then `"345678..."`); judged one event at a time, neither half is
a credential. So the stream keeps a window:

- the *text* of an event is what the dialect streams as the answer: the `content` of an
  OpenAI chat delta (and tool-call `arguments`), `delta` of the Responses API text and
  argument events, Anthropic `text_delta`/`input_json_delta`, Gemini parts' `text`, or the
  whole `data` of an event that is not JSON;
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

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authz.body import parse_json
from authz.config.model import Limits
from authz.detectors import pii_findings, secret_findings
from authz.policy.response_rules import REDACT
from authz.response_path.judge import ALLOW, DENY, ResponseDecision
from authz.response_path.rewrite import redact_value
from authz.response_view import (
    EMPTY_MCP,
    FIELDS,
    Completion,
    gemini_candidates,
    mcp_of,
)

_LINE_END = re.compile(rb"\r\n|\r|\n")
Path = tuple[str | int, ...]


class Unreadable(Exception):
    """A stream the service cannot read (an event too large, bad JSON in an event)."""


@dataclass
class Event:
    """One event: its bytes as received, and what was read from them."""

    raw: bytes
    lines: list[bytes]  # without line ends, the blank line excluded
    data: str | None  # the data lines joined with "\n"; None without data lines
    value: Any = None  # the data parsed as JSON
    slots: list[tuple[Path, str]] = field(default_factory=list)  # (path in value, text)
    changed: bool = False

    @property
    def text(self) -> str:
        """The event's answer text."""
        return "".join(text for _, text in self.slots)

    def encoded(self) -> bytes:
        """The bytes to send: as received, or rebuilt with the rewritten data."""
        if not self.changed:
            return self.raw
        if isinstance(self.value, dict | list):
            data = json.dumps(self.value, ensure_ascii=False, separators=(",", ":"))
        else:
            data = self.data or ""
        out, written = [], False
        for line in self.lines:
            if line.startswith(b"data:"):
                if not written:
                    out += [b"data: " + part.encode() for part in data.split("\n")]
                    written = True
            else:
                out.append(line)
        return b"\n".join(out) + b"\n\n"


class EventParser:
    """Splits a byte stream into events at blank lines; keeps a partial event (bounded)."""

    def __init__(self, max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        self._buffer = b""

    def feed(self, chunk: bytes, end: bool) -> list[Event]:
        """The events completed by `chunk`; at the end, what is left is the last one."""
        self._buffer += chunk
        events: list[Event] = []
        start = position = 0
        lines: list[bytes] = []
        buffer = self._buffer
        while True:
            found = _LINE_END.search(buffer, position)
            # A lone CR at the very end may be the first half of CRLF: wait for more.
            if found is None or (found.group() == b"\r" and found.end() == len(buffer) and not end):
                break
            line = buffer[position : found.start()]
            position = found.end()
            if line:
                lines.append(line)
                continue
            if lines:
                events.append(_event(buffer[start:position], lines))
            lines, start = [], position
        self._buffer = buffer[start:]
        if end and self._buffer:
            rest = [line for line in _LINE_END.split(self._buffer) if line]
            if rest:
                events.append(_event(self._buffer, rest))
            self._buffer = b""
        for event in events:
            if len(event.raw) > self.max_event_bytes:
                raise Unreadable(f"an event of {len(event.raw)} bytes exceeds max_body_bytes")
        if len(self._buffer) > self.max_event_bytes:
            raise Unreadable(f"an event grew past {self.max_event_bytes} bytes (max_body_bytes)")
        return events


def _event(raw: bytes, lines: list[bytes]) -> Event:
    data = [line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")]
    text = b"\n".join(data).decode("utf-8", errors="replace") if data else None
    return Event(raw, lines, text)


# --- what each dialect streams -------------------------------------------------------------


@dataclass
class StreamState:
    """What the events so far have said: the completion (finish reason, usage, tool calls,
    with their streamed arguments) and how many bytes came."""

    done: Completion = field(default_factory=Completion)
    calls: dict[Any, dict[str, str]] = field(default_factory=dict)
    size: int = 0

    def call(self, key: Any, name: str = "") -> dict[str, str] | None:
        """The tool call streamed under `key` (created on first sight, bounded)."""
        if key not in self.calls:
            before = len(self.done.tool_calls)
            self.done.add_call(name, "")
            if len(self.done.tool_calls) > before:
                self.calls[key] = self.done.tool_calls[-1]
        found = self.calls.get(key)
        if found is not None and name and not found["name"]:
            found["name"] = name
        return found

    def arguments(self, key: Any, text: str) -> None:
        """More of a tool call's arguments."""
        found = self.call(key)
        if found is not None and len(found["arguments"]) < 1 << 16:
            found["arguments"] += text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)]


def _text_at(value: Any, path: Path) -> str | None:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return None
    return value if isinstance(value, str) and value else None


def _openai_chunk(value: dict[str, Any], state: StreamState) -> list[Path]:
    paths: list[Path] = []
    for i, choice in _items(value.get("choices")):
        delta = _dict(choice.get("delta"))
        paths += [("choices", i, "delta", "content"), ("choices", i, "delta", "refusal")]
        paths.append(("choices", i, "text"))  # the legacy completions API
        for j, call in _items(delta.get("tool_calls")):
            function = _dict(call.get("function"))
            key = ("openai", choice.get("index", i), call.get("index", j))
            name = function.get("name")
            state.call(key, name if isinstance(name, str) else "")
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                state.arguments(key, arguments)
            paths.append(("choices", i, "delta", "tool_calls", j, "function", "arguments"))
        if isinstance(choice.get("finish_reason"), str):
            state.done.finish_reason = choice["finish_reason"]
    usage = _dict(value.get("usage"))
    state.done.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return paths


def _responses_event(value: dict[str, Any], state: StreamState) -> list[Path]:
    kind = value.get("type", "")
    if kind in ("response.output_text.delta", "response.refusal.delta"):
        return [("delta",)]
    key = ("responses", value.get("item_id") or value.get("output_index"))
    if kind == "response.output_item.added":
        item = _dict(value.get("item"))
        if item.get("type") == "function_call":
            key = ("responses", item.get("id") or value.get("output_index"))
            name = item.get("name")
            state.call(key, name if isinstance(name, str) else "")
    elif kind == "response.function_call_arguments.delta":
        if isinstance(value.get("delta"), str):
            state.arguments(key, value["delta"])
        return [("delta",)]
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        response = _dict(value.get("response"))
        details = _dict(response.get("incomplete_details"))
        reason = details.get("reason") or response.get("status")
        if isinstance(reason, str):
            state.done.finish_reason = reason
        usage = _dict(response.get("usage"))
        state.done.usage(usage.get("input_tokens"), usage.get("output_tokens"))
    return []


def _anthropic_event(value: dict[str, Any], state: StreamState) -> list[Path]:
    kind = value.get("type")
    key = ("anthropic", value.get("index"))
    if kind == "message_start":
        usage = _dict(_dict(value.get("message")).get("usage"))
        state.done.usage(usage.get("input_tokens"), usage.get("output_tokens"))
    elif kind == "content_block_start":
        block = _dict(value.get("content_block"))
        if block.get("type") == "tool_use":
            name = block.get("name")
            state.call(key, name if isinstance(name, str) else "")
    elif kind == "content_block_delta":
        delta = _dict(value.get("delta"))
        if delta.get("type") == "input_json_delta":
            if isinstance(delta.get("partial_json"), str):
                state.arguments(key, delta["partial_json"])
            return [("delta", "partial_json")]
        return [("delta", "text")]
    elif kind == "message_delta":
        reason = _dict(value.get("delta")).get("stop_reason")
        if isinstance(reason, str):
            state.done.finish_reason = reason
        usage = _dict(value.get("usage"))
        state.done.usage(usage.get("input_tokens"), usage.get("output_tokens"))
    return []


def _gemini_chunk(value: dict[str, Any], state: StreamState) -> list[Path]:
    paths: list[Path] = []
    for i, candidate in _items(value.get("candidates")):
        for j, _ in _items(_dict(candidate.get("content")).get("parts")):
            paths.append(("candidates", i, "content", "parts", j, "text"))
    chunk = Completion()
    gemini_candidates(value, chunk)
    for call in chunk.tool_calls:
        state.done.add_call(call["name"], call["arguments"])
    state.done.finish_reason = chunk.finish_reason or state.done.finish_reason
    state.done.usage(chunk.input_tokens, chunk.output_tokens)
    return paths


def read_event(event: Event, state: StreamState, limits: Limits) -> None:
    """Parse the event's data, find its answer text (slots) and note what it says."""
    data = event.data
    if data is None or data.strip() == "[DONE]":
        return
    if not data.lstrip().startswith(("{", "[")):
        event.slots = [((), data)] if data else []
        return
    parsed = parse_json(data.encode("utf-8"), limits)
    if parsed.error is not None:
        raise Unreadable(f"an event's data is not JSON: {parsed.error}")
    event.value = value = parsed.value
    if not isinstance(value, dict) or mcp_of(value) is not None:
        return
    if isinstance(value.get("choices"), list):
        paths = _openai_chunk(value, state)
    elif str(value.get("type", "")).startswith("response."):
        paths = _responses_event(value, state)
    elif value.get("type") in (
        "message_start",
        "content_block_start",
        "content_block_delta",
        "message_delta",
    ):
        paths = _anthropic_event(value, state)
    elif isinstance(value.get("candidates"), list):
        paths = _gemini_chunk(value, state)
    else:
        paths = []
    event.slots = [(p, text) for p in paths if (text := _text_at(value, p)) is not None]


def _set_at(value: Any, path: Path, text: str) -> None:
    holder = value
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = text


# --- the judge --------------------------------------------------------------------------


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
                        _set_at(event.value, path, new)
                    else:
                        event.data = new  # the data of an event that is not JSON
                rewritten.append((path, new))
            event.slots = rewritten
            if index < upto and isinstance(event.value, dict | list):
                cleaned = redact_value(event.value)
                for path, text in event.slots:  # the answer text: judged in the window
                    if path:
                        _set_at(cleaned, path, text)
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
