"""What-if replay: re-decide logged requests under a candidate config.

`authz serve --log-replay` adds to each decision line a `replay` record: the request as
`authz check` takes it, plus the identity that was resolved (tokens cannot be re-verified
later, and need not be). Credentials and any text with secrets or personal data in it are
kept only as salted SHA-256 hashes (`hashed:...`). `authz replay --config NEW LOG` decides
every recorded request under NEW; a request whose outcome under NEW depends on a hashed
value is reported as not replayable, never guessed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from authz.attributes import Attributes, from_check_request
from authz.decide import decide
from authz.detectors import pii_findings, secret_findings
from authz.identity.model import Identity
from authz.policy.compiler import CompiledConfig
from authz.request_file import to_check_request

HASHED = "hashed:"


class Hasher:
    """Salted hashes, one salt per process (so equal values match within one log)."""

    def __init__(self, salt: bytes | None = None) -> None:
        self.salt = salt or secrets.token_bytes(16)

    def __call__(self, value: str) -> str:
        return HASHED + hashlib.sha256(self.salt + value.encode("utf-8", "replace")).hexdigest()


def _sensitive(text: str) -> bool:
    return bool(secret_findings(text) or pii_findings(text))


def record(attrs: Attributes, masked_headers: frozenset[str], hasher: Hasher) -> dict[str, Any]:
    """The replayable record of one request."""
    request = attrs.request
    headers = {
        name: hasher(value) if name in masked_headers or _sensitive(value) else value
        for name, value in request.headers.items()
        if not name.startswith(":")
    }
    body = attrs.body.raw.decode("utf-8", errors="replace")
    query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
    identity = dataclasses.asdict(attrs.identity)
    identity["claims"] = {k: hasher(json.dumps(v)) for k, v in identity["claims"].items()}
    return {
        "request": {
            "method": request.method,
            "path": request.path + (f"?{query}" if query else ""),
            "host": request.host,
            "scheme": request.scheme,
            "headers": headers,
            "body": hasher(body) if body and _sensitive(body) else body,
            "source": attrs.source.as_cel(),
            "destination": attrs.destination.as_cel(),
            "context": attrs.context,
        },
        "identity": identity,
    }


def _hashed_paths(rec: dict[str, Any]) -> set[tuple[str, ...]]:
    paths = set()
    req = rec["request"]
    for name, value in req["headers"].items():
        if isinstance(value, str) and value.startswith(HASHED):
            paths.add(("request", "headers", name))
    if isinstance(req.get("body"), str) and req["body"].startswith(HASHED):
        paths.update({("body",), ("llm",), ("mcp",)})
    if rec["identity"].get("claims"):
        paths.add(("identity", "claims"))
    return paths


def _depends(paths: tuple[tuple[str, ...], ...], hashed: set[tuple[str, ...]]) -> bool:
    for path in paths:
        for secret in hashed:
            if path[: len(secret)] == secret or secret[: len(path)] == path:
                return True
    return False


@dataclass
class Report:
    """What changed."""

    total: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    transitions: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    not_replayable: list[str] = field(default_factory=list)
    skipped: int = 0


def replay(config: CompiledConfig, lines: list[str]) -> Report:
    """Re-decide every replayable logged request under `config`."""
    report = Report()
    for line in lines:
        try:
            logged = json.loads(line)
        except json.JSONDecodeError:
            report.skipped += 1
            continue
        rec = logged.get("replay") if isinstance(logged, dict) else None
        if not isinstance(rec, dict):
            report.skipped += 1
            continue
        report.total += 1
        request = to_check_request(rec["request"])
        attrs = from_check_request(request, config.limits)
        attrs = dataclasses.replace(
            attrs,
            identity=Identity(
                **{
                    **rec["identity"],
                    "audiences": tuple(rec["identity"]["audiences"]),
                    "groups": tuple(rec["identity"]["groups"]),
                    "scopes": tuple(rec["identity"]["scopes"]),
                }
            ),
        )
        named = config.policy_named(attrs.context.get("policy", ""))
        reads = (
            named.cache_paths
            if named
            else tuple(p for policy in config.policies for p in policy.cache_paths)
        )
        if _depends(reads, _hashed_paths(rec)):
            report.not_replayable.append(logged.get("decision_id", "?"))
            continue
        new = decide(config, attrs, logged.get("decision_id", "replay"))
        old_key = f"{logged.get('decision')}"
        report.transitions[f"{old_key} -> {new.outcome}"] += 1
        if old_key != new.outcome or logged.get("rule") != new.rule:
            report.rules[
                f"{logged.get('policy')}/{logged.get('rule')} -> {new.policy}/{new.rule}"
            ] += 1
            report.changed.append(
                {
                    "decision_id": logged.get("decision_id"),
                    "path": rec["request"]["path"],
                    "old": f"{old_key} ({logged.get('rule')})",
                    "new": f"{new.outcome} ({new.rule}: {new.message})",
                }
            )
    return report


def render(report: Report, limit: int) -> str:
    """The printed summary."""
    out = [f"replayed {report.total} requests ({report.skipped} log lines without a record)"]
    out.append("decisions, old -> new:")
    out += [f"  {k}: {v}" for k, v in sorted(report.transitions.items())]
    if report.rules:
        out.append("by rule, old -> new:")
        out += [f"  {k}: {v}" for k, v in report.rules.most_common()]
    if report.not_replayable:
        out.append(
            f"not replayable (the outcome depends on a hashed value): {len(report.not_replayable)}"
        )
    out.append(f"changed: {len(report.changed)}; the first {min(limit, len(report.changed))}:")
    out += [
        f"  {c['decision_id']} {c['path']}: {c['old']} -> {c['new']}"
        for c in report.changed[:limit]
    ]
    return "\n".join(out)
