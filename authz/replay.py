"""What-if replay: re-decide logged requests under a candidate config.

`authz serve --log-replay` adds to each decision line a `replay` record: the request as
`authz check` takes it, plus the identity that was resolved (tokens cannot be re-verified
later, and need not be). What is kept in clear and what only as a salted SHA-256 hash
(`hashed:...`, one random salt per process, so equal values match within one log):

- request headers: in clear, except credential headers (Authorization, cookies, API-key
  headers, every header the identity config reads) and values with secrets or personal data;
- the body: in clear unless it holds secrets or personal data;
- identity `authenticated`, `method`, `error`, `issuer`, `audiences`, `expires_at`: in clear;
- identity `subject`, `groups`, `scopes`, `spiffe_id`, `trust_domain`, `api_key`: in clear
  when a loaded policy reads that field (`subject` never with `--no-subject`), else hashed;
- JWT claims (and API-key attributes): in clear those a loaded policy reads by name
  (`identity.claims.tier`, `identity.claims["tier"]`, `"tier" in identity.claims`; all of
  them when a policy uses `identity.claims` any other way), the others hashed;
- any identity value or claim holding secrets or personal data: hashed, whatever reads it.

`authz replay --config NEW LOG` decides every recorded request under NEW; a request whose
outcome under NEW depends on a hashed value (for a claim: that very claim) is reported as
not replayable, never guessed. So is one whose identity was never resolved (the loaded
policies did not read it) when NEW reads it.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from authz.attributes import from_check_request
from authz.decide import ROUTE_POLICY_KEY, decide
from authz.identity.model import Identity
from authz.observability.replay_record import (
    HASHED,
    LISTS,
    claim_reads,
    sources_of,
)
from authz.policy.compiler import CompiledConfig, CompiledPolicy
from authz.request_file import to_check_request


def _hashed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(HASHED)


def _hashed_paths(rec: dict[str, Any]) -> set[tuple[str, ...]]:
    paths = set()
    req = rec["request"]
    for name, value in req["headers"].items():
        if _hashed(value):
            paths.add(("request", "headers", name))
    if _hashed(req.get("body")):
        paths.update({("body",), ("llm",), ("mcp",)})
    if not rec.get("identity_resolved", True):
        paths.add(("identity",))
    for name, value in rec["identity"].items():
        if name != "claims" and _hashed(value):
            paths.add(("identity", name))
    for key, value in (rec["identity"].get("claims") or {}).items():
        if _hashed(value):
            paths.add(("identity", "claims", key))
    return paths


def _reads(config: CompiledConfig, named: CompiledPolicy | None) -> list[tuple[str, ...]]:
    """The attribute paths the candidate's decision depends on, claims by name."""
    policies = [named] if named is not None else list(config.policies)
    paths = [p for policy in policies for p in policy.cache_paths]
    if ("identity", "claims") in paths:
        names = claim_reads(sources_of(policies))
        if names is not None:
            paths.remove(("identity", "claims"))
            paths += [("identity", "claims", name) for name in sorted(names)]
    return paths


def _depends(paths: Iterable[tuple[str, ...]], hashed: set[tuple[str, ...]]) -> bool:
    for path in paths:
        for secret in hashed:
            if path[: len(secret)] == secret or secret[: len(path)] == path:
                return True
    return False


def _identity(logged: dict[str, Any]) -> Identity:
    fields = {f.name for f in dataclasses.fields(Identity)}
    values = {k: v for k, v in logged.items() if k in fields}
    for name in LISTS:
        value = values.get(name, [])
        values[name] = tuple(value) if isinstance(value, list) else (value,)
    return Identity(**values)


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
        attrs = dataclasses.replace(attrs, identity=_identity(rec["identity"]))
        named = config.policy_named(attrs.context.get(ROUTE_POLICY_KEY, ""))
        if _depends(_reads(config, named), _hashed_paths(rec)):
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
