"""The CEL face of the detectors: kinds of findings, and text with findings replaced."""

from __future__ import annotations

from authz.detectors.pii import pii_findings
from authz.detectors.scan import Finding
from authz.detectors.secrets import secret_findings


def kinds(findings: list[Finding]) -> list[str]:
    """Sorted distinct kinds."""
    return sorted({f.kind for f in findings})


def redact(text: str) -> str:
    """The text with every secret and piece of personal data replaced by [KIND]."""
    spans = sorted(secret_findings(text) + pii_findings(text), key=lambda f: (f.start, -f.end))
    out, position = [], 0
    for finding in spans:
        if finding.start < position:
            continue
        out.append(text[position : finding.start])
        out.append(f"[{finding.kind.upper()}]")
        position = finding.end
    out.append(text[position:])
    return "".join(out)
