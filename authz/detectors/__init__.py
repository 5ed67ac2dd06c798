"""Secrets, personal data and prompt-injection signals in text, in linear time.

    scan.py       shared: RE2 patterns, Finding, claimed spans
    secrets.py    secret_findings(text)
    pii.py        pii_findings(text)
    patterns.py   the taxonomy: one RE2 pattern per injection technique
    reading.py    normalised readings of text, invisible characters, decoded payloads
    injection.py  injection_signals(text): the taxonomy judged on those readings
    score.py      injection_score(text): a learned probability (numpy, committed weights)
    redact.py     kinds(findings), secret_kinds(text), pii_kinds(text), redact(text)
    classifier.py injection_model(text): a classifier the operator brings (ONNX; optional
                  extra `model`), scored on its own bounded pool
    config.py     the `detectors:` section of the policy file, which loads that classifier

Text is scanned up to a cap (limits.max_scan_chars); findings past it are not seen.
"""

from __future__ import annotations

from authz.detectors.injection import injection_signals, normalise, readings
from authz.detectors.pii import iban_ok, luhn_ok, pii_findings, ssn_ok
from authz.detectors.redact import kinds, pii_kinds, redact, secret_kinds
from authz.detectors.scan import Finding
from authz.detectors.secrets import secret_findings


def injection_score(text: str, signals: list[str] | None = None) -> float:
    """authz.detectors.score.injection_score, imported on first call: its model needs numpy
    (~15 MiB per worker), which a config that never calls it need not load."""
    from authz.detectors.score import injection_score as score

    return score(text, signals)


__all__ = [
    "Finding",
    "iban_ok",
    "injection_score",
    "injection_signals",
    "kinds",
    "luhn_ok",
    "normalise",
    "pii_findings",
    "pii_kinds",
    "readings",
    "redact",
    "secret_findings",
    "secret_kinds",
    "ssn_ok",
]
