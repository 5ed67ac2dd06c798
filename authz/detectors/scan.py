"""What every detector shares: compiled RE2 patterns, findings, and a set of taken spans.

Every pattern is RE2 (google-re2): no backtracking, so hostile text cannot blow up the
scan. Checks that need arithmetic (Luhn, IBAN mod-97, SSN ranges, entropy) run in Python on
the candidates RE2 found; their cost per candidate is bounded, the set of spans already
taken is searched by bisection, and one detector call judges a bounded number of candidates
(a Budget): text dense with candidates costs at most that many judgements, not one per
candidate. Candidates past the budget are not judged but reported, fail safe: the kind is
found from the first unjudged candidate to the end of the text (`Finding.unjudged`), so
`secrets()`/`pii()` name it and `redact()` replaces that whole rest.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

import re2

Regexp = re2._Regexp


@dataclass(frozen=True)
class Finding:
    """A kind of sensitive data at [start, end) of the scanned text."""

    kind: str
    start: int
    end: int
    unjudged: bool = False  # past the budget: [start, end) holds candidates nobody judged


def compile_re(pattern: str) -> Regexp:
    """An RE2 pattern with a memory bound."""
    options = re2.Options()
    options.max_mem = 64 << 20
    return re2.compile(pattern, options)


def any_of(patterns: list[Regexp]) -> Regexp:
    """One pattern matching wherever any of `patterns` would: a single scan rejects clean
    text, the common case, before the per-kind scans run."""
    return compile_re("|".join(f"(?:{p.pattern})" for p in patterns))


# Candidates one detector call judges in Python: per kind, and in all. Ordinary text stays
# far below (a kind stops at its first finding when only kinds are asked for); text built to
# be dense with candidates reaches them and is then reported, not judged.
MAX_PER_KIND = 128
MAX_CANDIDATES = 512


@dataclass
class Budget:
    """What one detector call may still judge, and where each kind stopped being judged."""

    per_kind: int = MAX_PER_KIND
    left: int = MAX_CANDIDATES
    used: dict[str, int] = field(default_factory=dict)
    unjudged: dict[str, int] = field(default_factory=dict)  # kind -> first unjudged start

    def candidates(self, kind: str, pattern: Regexp, text: str) -> Iterator[re2._Match]:
        """`pattern`'s matches in `text` while the budget lasts; the first one past it is
        remembered as where `kind` stopped being judged."""
        used = self.used.get(kind, 0)
        for match in pattern.finditer(text):
            if used >= self.per_kind or self.left <= 0:
                start = match.start()
                self.unjudged[kind] = min(start, self.unjudged.get(kind, start))
                break
            used += 1
            self.left -= 1
            self.used[kind] = used
            yield match

    def findings(self, text: str) -> list[Finding]:
        """One unjudged finding per kind the budget cut short, to the end of the text."""
        return [Finding(k, s, len(text), unjudged=True) for k, s in self.unjudged.items()]


class Spans:
    """The union of [start, end) spans already claimed by a finding, kept as sorted,
    disjoint intervals (overlapping or touching claims merge), so a lookup is one bisection
    however dense the claims are."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        """Claim a span."""
        if end <= start:
            return
        first = bisect.bisect_left(self._ends, start)  # first interval ending at/after start
        last = bisect.bisect_right(self._starts, end)  # past the last starting at/before end
        if first < last:  # merge with every interval it touches
            start = min(start, self._starts[first])
            end = max(end, self._ends[last - 1])
        self._starts[first:last] = [start]
        self._ends[first:last] = [end]

    def covers(self, position: int) -> bool:
        """Whether a claimed span contains `position`."""
        index = bisect.bisect_right(self._starts, position) - 1
        return index >= 0 and self._ends[index] > position

    def overlaps(self, start: int, end: int) -> bool:
        """Whether [start, end) overlaps a claimed span."""
        index = bisect.bisect_left(self._starts, end) - 1
        return index >= 0 and self._ends[index] > start
