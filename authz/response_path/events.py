"""text/event-stream bytes -> events: split at blank lines, a partial event kept (bounded).

An event keeps its bytes as received and is re-encoded only when redaction changed it, so
what the client gets is byte for byte what the upstream sent unless a rule rewrote it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

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
