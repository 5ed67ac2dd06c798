"""The CEL face of the detectors: kinds of findings, and text with findings replaced."""

from __future__ import annotations

from authz.detectors.pii import pii_findings
from authz.detectors.scan import Finding
from authz.detectors.secrets import secret_findings

WHOLESALE = "[REDACTED]"  # what replaces the rest of a text past a detector's budget


def kinds(findings: list[Finding]) -> list[str]:
    """Sorted distinct kinds."""
    return sorted({f.kind for f in findings})


def secret_kinds(text: str, hits: frozenset[str] | None = None) -> list[str]:
    """`secrets()`: the kinds of secret in text (each kind judged until its first finding);
    none when prescan.scan(text) (`hits`) found no candidate."""
    if hits is not None and "secrets" not in hits:
        return []
    return kinds(secret_findings(text, first_of_kind=True))


def pii_kinds(text: str, hits: frozenset[str] | None = None) -> list[str]:
    """`pii()`: the kinds of personal data in text (each judged until its first finding);
    none when prescan.scan(text) (`hits`) found no candidate."""
    if hits is not None and "pii" not in hits:
        return []
    return kinds(pii_findings(text, first_of_kind=True))


def redact(text: str) -> str:
    """The text with every secret and piece of personal data replaced by [KIND]. Past a
    detector's budget (scan.py) the findings are not all known: from the first candidate
    nobody judged, the rest of the text is replaced by [REDACTED], fail safe."""
    spans = sorted(secret_findings(text) + pii_findings(text), key=lambda f: (f.start, -f.end))
    out, position = [], 0
    for finding in spans:
        if finding.unjudged:
            out.append(text[position : max(position, finding.start)])
            out.append(WHOLESALE)
            return "".join(out)
        if finding.start < position:
            continue
        out.append(text[position : finding.start])
        out.append(f"[{finding.kind.upper()}]")
        position = finding.end
    out.append(text[position:])
    return "".join(out)
