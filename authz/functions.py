"""The project's own CEL functions, the same on both engines: secrets(), pii(), injection(),
injection_score(), redact().

Each takes a string, or any map or list (its string leaves are scanned), and looks at most
`max_scan_chars` characters. Results are memoised per request, so a function called from
several rules on the same text runs once; and since they are ordinary CEL calls, none runs
unless a loaded expression calls it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authz import detectors

MAX_LEAVES = 10_000


@dataclass(frozen=True)
class CelFunction:
    """A function callable from CEL: its name, result kind ("list", "string" or "double")
    and body."""

    name: str
    returns: str
    impl: Callable[[str], Any]


def _text(value: Any, limit: int) -> str:
    """The text a function scans: a string itself, or the string leaves of a map or list."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, bytes):
        return value[:limit].decode("utf-8", errors="replace")
    parts: list[str] = []
    size = 0
    stack = [value]
    seen = 0
    while stack and size < limit and seen < MAX_LEAVES:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            parts.append(item)
            size += len(item) + 1
        elif isinstance(item, dict):
            stack.extend(reversed([v for pair in item.items() for v in pair]))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif isinstance(item, bytes):
            parts.append(item.decode("utf-8", errors="replace"))
            size += len(item) + 1
    return "\n".join(parts)[:limit]


class FunctionLibrary:
    """The functions for one loaded config, with a per-request (per-thread) memo."""

    def __init__(self, max_scan_chars: int) -> None:
        self.max_scan_chars = max_scan_chars
        self._local = threading.local()
        self.functions = (
            CelFunction("secrets", "list", lambda t: detectors.kinds(detectors.secret_findings(t))),
            CelFunction("pii", "list", lambda t: detectors.kinds(detectors.pii_findings(t))),
            CelFunction("injection", "list", detectors.injection_signals),
            CelFunction("redact", "string", detectors.redact),
            CelFunction("injection_score", "double", detectors.injection_score),
        )
        self.names = frozenset(f.name for f in self.functions)
        self._bound = {f.name: self.bound(f) for f in self.functions}
        self.runs = 0  # how many times a detector actually ran (for tests and metrics)

    def begin_request(self) -> None:
        """Forget the previous request's results (called once per Check, on its thread)."""
        self._local.memo = {}

    def call(self, name: str, value: Any) -> Any:
        """Run function `name` on a value (memoised like a call from CEL)."""
        return self._bound[name](value)

    def request_runs(self) -> int:
        """How many scans the current request ran (its memo's size)."""
        return len(getattr(self._local, "memo", {}))

    def bound(self, function: CelFunction) -> Callable[[Any], Any]:
        """The Python callable an engine registers for `function`."""

        def call(value: Any) -> Any:
            text = _text(value, self.max_scan_chars)
            memo = getattr(self._local, "memo", None)
            if memo is None:
                memo = self._local.memo = {}
            key = (function.name, text)
            if key not in memo:
                self.runs += 1
                memo[key] = function.impl(text)
            return memo[key]

        return call
