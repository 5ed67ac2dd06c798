"""Prompt-injection signals in text: the taxonomy's patterns (patterns.py) judged on the
normalised readings of the text and on payloads decoded from it (reading.py)."""

from __future__ import annotations

import codecs
from collections.abc import Sequence

from authz.detectors.patterns import (
    ASSIGN,
    HIJACK_MARKERS,
    JOIN,
    OTHER_TURN,
    ROT13_HINT,
    SIGNALS,
    TURN,
    WEAK,
)
from authz.detectors.reading import (
    ANY_RUN,
    FOLDABLE,
    MAX_PAYLOADS,
    decoded_payloads,
    invisible,
    normalise,
    readings,
)
from authz.detectors.scan import any_of

__all__ = [
    "ANY_RUN",
    "ANY_SIGNAL",
    "FOLDABLE",
    "HIJACK_MARKERS",
    "PREFILTER_CHARS",
    "ROT13_HINT",
    "hijack_markers",
    "injection_signals",
    "normalise",
    "readings",
]

# The first scans, which prescan.py runs with the other detectors' in one pass.
ANY_SIGNAL = any_of([p for _, p in SIGNALS] + [TURN, WEAK, ASSIGN])
# The union of every signal pattern is too big for RE2's DFA on longer text: its state cache
# fills, the search falls back to the NFA and costs ~3 ms per KB (measured), ten times the
# signal patterns searched one by one. It rules out clean short text, where it costs a few us.
PREFILTER_CHARS = 256


def hijack_markers(reading: str) -> int:
    """How many distinct weaker persona markers the reading holds (up to HIJACK_MARKERS)."""
    seen: set[int] = set()
    for match in WEAK.finditer(reading):
        seen.update(i for i, group in enumerate(match.groups()) if group is not None)
        if len(seen) >= HIJACK_MARKERS:
            break
    return len(seen)


def _split_payload(reading: str) -> bool:
    """Payload splitting: two or more short string assignments and an order to join them."""
    for count, _ in enumerate(ASSIGN.finditer(reading), start=1):
        if count >= 2:
            return bool(JOIN.search(reading))
    return False


def _signals(text: str) -> set[str]:
    return _signals_in(readings(text))


def _signals_in(readings: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for reading in readings:
        if len(reading) <= PREFILTER_CHARS and not ANY_SIGNAL.search(reading):
            continue
        found.update(name for name, pattern in SIGNALS if pattern.search(reading))
        turn = TURN.search(reading)
        if turn is not None and OTHER_TURN[turn.group(1)].search(reading):
            found.add("delimiter_spoofing")
        if "role_hijack" not in found and hijack_markers(reading) >= HIJACK_MARKERS:
            found.add("role_hijack")
        if _split_payload(reading):
            found.add("payload_splitting")
    return found


def injection_signals(text: str, hits: frozenset[str] | None = None) -> list[str]:
    """Prompt-injection signals in text, judged after normalisation. `hits`: what
    prescan.scan(text) found; for ASCII text nothing a second reading would fold, the scans
    whose category it did not find are skipped (prescan.py says why that changes nothing)."""
    if hits is not None and "foldable" not in hits and text.isascii():
        # one reading, which is text.lower() when nothing needs folding; no invisible
        # characters in ASCII
        if "messy" in hits:
            signals = _signals_in([normalise(text)])
        elif "edges" in hits:
            signals = _signals_in([text.lower().strip(" \n")])
        else:
            signals = _signals_in([text.lower()]) if "signal" in hits else set()
        payloads = decoded_payloads(text) if "runs" in hits else []
        rot13 = "rot13" in hits
    else:
        signals = _signals(text)
        if invisible(text):
            signals.add("invisible_characters")
        payloads = decoded_payloads(text)
        rot13 = ROT13_HINT.search(text.lower()) is not None
    if rot13:
        payloads.append(codecs.decode(text, "rot13"))
    # A few payloads judged one by one, the rest as one text: a signal in any is enough.
    if payloads[MAX_PAYLOADS:]:
        payloads[MAX_PAYLOADS:] = ["\n\n".join(payloads[MAX_PAYLOADS:])]
    for payload in payloads:
        if _signals(payload):
            signals.add("encoded_payload")
            break
    return sorted(signals)
