"""What every detector shares: compiled RE2 patterns, findings, and a set of taken spans.

Every pattern is RE2 (google-re2): no backtracking, so hostile text cannot blow up the
scan. Checks that need arithmetic (Luhn, IBAN mod-97, SSN ranges, entropy) run in Python on
the candidates RE2 found; their cost per candidate is bounded and the set of spans already
taken is searched by bisection, so text dense with candidates stays linear-ish.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import re2

Regexp = re2._Regexp


@dataclass(frozen=True)
class Finding:
    """A kind of sensitive data at [start, end) of the scanned text."""

    kind: str
    start: int
    end: int


def compile_re(pattern: str) -> Regexp:
    """An RE2 pattern with a memory bound."""
    options = re2.Options()
    options.max_mem = 64 << 20
    return re2.compile(pattern, options)


def any_of(patterns: list[Regexp]) -> Regexp:
    """One pattern matching wherever any of `patterns` would: a single scan rejects clean
    text, the common case, before the per-kind scans run."""
    return compile_re("|".join(f"(?:{p.pattern})" for p in patterns))


class Spans:
    """Non-overlapping [start, end) spans already claimed by a finding, kept sorted."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        """Claim a span (callers add only spans that overlap none already claimed, or
        spans whose overlap does not matter for later lookups)."""
        index = bisect.bisect_left(self._starts, start)
        self._starts.insert(index, start)
        self._ends.insert(index, end)

    def covers(self, position: int) -> bool:
        """Whether a claimed span contains `position`."""
        index = bisect.bisect_right(self._starts, position) - 1
        return index >= 0 and self._ends[index] > position

    def overlaps(self, start: int, end: int) -> bool:
        """Whether [start, end) overlaps a claimed span."""
        index = bisect.bisect_left(self._starts, end) - 1
        while index >= 0:
            if self._ends[index] > start:
                return True
            if self._starts[index] < start - 4096:
                return False  # spans are bounded in length; nothing further left reaches
            index -= 1
        return False
