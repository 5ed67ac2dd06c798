"""Credentials in text: known key formats, and generic `name = value` assignments whose
value looks like a real secret (entropy, character classes, not a placeholder)."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

from authz.detectors.scan import Budget, Finding, Regexp, Spans, any_of, compile_re

_SECRET_PATTERNS: list[tuple[str, Regexp]] = [
    ("private_key", compile_re(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("aws_access_key", compile_re(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    (
        "aws_secret_key",
        compile_re(
            r"(?i)aws_?(?:secret_?(?:access_?)?key|sk)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})\b"
        ),
    ),
    ("gcp_api_key", compile_re(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("github_token", compile_re(r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})")),
    ("gitlab_token", compile_re(r"\bglpat-[A-Za-z0-9_\-]{20,}")),
    (
        "slack_webhook",
        compile_re(
            r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"
        ),
    ),
    ("slack_token", compile_re(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("stripe_key", compile_re(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("anthropic_key", compile_re(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("openai_key", compile_re(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}")),
    ("jwt", compile_re(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")),
]

_NAME = (
    r"(?i)(?:^|[^A-Za-z0-9])[a-z0-9_.-]*(?:password|passwd|pwd|pass|secret|api[_-]?key|"
    r"access[_-]?key|account[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|token|"
    r"client[_-]?secret|private[_-]?key|credentials?)(?:[_.-]?key)?"
)
# name = value, name := value, name => value, name: value (YAML, with a space), "name": "v"
_SEPARATOR = r"(?:[ \t]*(?::=|=>|=)[ \t]*|[ \t]*:[ \t]+|[\"'][ \t]*:[ \t]*)"  # one line
_ASSIGNMENT = compile_re(
    _NAME
    + r"[\"']?"
    + _SEPARATOR
    + r"(?:\"([^\"\n]{8,200})\"|'([^'\n]{8,200})'|`([^`\n]{8,200})`"
    + r"|([^\s\"'`,;&<>(){}\[\]]{8,}))"
)
_URL_CREDENTIAL = compile_re(r"\b[a-z][a-z0-9+.\-]*://[^/\s:@]{1,64}:([^@\s/]{6,200})@[^\s@]")
_CODE_REFERENCE = compile_re(r"^[A-Za-z_]+(?:\.[A-Za-z_]+)+$")  # config.db.password
_PLACEHOLDER = compile_re(
    r"(?i)^(?:\$|%|\{|<|\[|\*|!!|@[a-z0-9_./-]+$|x{4,}|\.\.\.|null|none|nil|true|false|undefined|changeme|change_me|"
    r"password|secret|example|your|my[_-]?|test|dummy|sample|placeholder|redacted|todo|env\b|"
    r"os\.|process\.env|getenv|config\.|settings\.|self\.|args\.|request\.|params\.|input)"
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


_PLACEHOLDER_WORD = compile_re(
    r"(?i)your[_-]|[_-]here\b|change[_-]?me|placeholder|redacted|"
    r"example|dummy|replace[_-]?me|insert[_-]"
)


def _looks_secret(value: str) -> bool:
    """A value that is plausibly a real credential rather than a name or placeholder."""
    if _PLACEHOLDER.search(value) or _PLACEHOLDER_WORD.search(value):
        return False
    if len(set(value)) < 6 or _CODE_REFERENCE.match(value):
        return False
    if value.startswith("eyJ") and "." not in value:
        return False  # base64 of a JSON object: a page cursor or state, not a credential
    classes = sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )
    return classes >= 2 and _entropy(value) >= 3.0


def secret_findings(text: str, first_of_kind: bool = False) -> list[Finding]:
    """Every secret found, by kind and span. `first_of_kind`: one finding of a kind is
    enough (what `secrets()` needs), so a kind's candidates are judged until one is found.
    Candidates past the call's Budget are reported unjudged (scan.py)."""
    if not _ANY_SECRET.search(text):
        return []
    found: list[Finding] = []
    taken = Spans()
    budget = Budget()
    for kind, pattern in _SECRET_PATTERNS:
        seen = False
        for match in budget.candidates(kind, pattern, text):
            start, end = match.span()
            if taken.covers(start):
                continue
            if kind == "openai_key" and text.startswith("sk-ant-", start):
                continue
            taken.add(start, end)  # claimed even once the kind is known: not a generic one
            if seen or _placeholder_shaped(match.group(0)):
                continue  # ghp_xxxx..., sk-xxxx...: the shape of a key without one
            found.append(Finding(kind, start, end))
            seen = first_of_kind
    generic = False
    for pattern, groups in ((_ASSIGNMENT, range(1, 5)), (_URL_CREDENTIAL, range(1, 2))):
        if generic:
            break
        for match in budget.candidates(f"generic_secret:{groups.stop}", pattern, text):
            group = next(g for g in groups if match.group(g) is not None)
            start, end = match.span(group)
            if taken.overlaps(start, end):
                continue
            if _looks_secret(match.group(group)):
                found.append(Finding("generic_secret", start, end))
                taken.add(start, end)
                if first_of_kind:
                    generic = True
                    break
    unjudged = budget.findings(text)
    return found + [dataclasses.replace(f, kind=f.kind.split(":")[0]) for f in unjudged]


_ANY_SECRET = any_of([p for _, p in _SECRET_PATTERNS] + [_ASSIGNMENT, _URL_CREDENTIAL])
ANY_SECRET = _ANY_SECRET  # the first scan, which prescan.py runs with the others


def _placeholder_shaped(token: str) -> bool:
    """A key-shaped token whose variable part is a run of one or two characters."""
    tail = token[-16:]
    return len(set(tail.lower())) <= 2
