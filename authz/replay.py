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
import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import lark
from celpy.celparser import CELParseError, CELParser

from authz.attributes import Attributes, from_check_request
from authz.decide import ROUTE_POLICY_KEY, decide
from authz.detectors import pii_findings, secret_findings
from authz.identity.model import Identity
from authz.policy.compiler import CompiledConfig, CompiledPolicy
from authz.request_file import to_check_request

HASHED = "hashed:"
# Identity fields kept in clear always: how the caller proved itself, not who it is.
PLAIN_IDENTITY = ("authenticated", "method", "error", "issuer", "audiences", "expires_at")
_LISTS = ("audiences", "groups", "scopes")
_parser = CELParser()


class Hasher:
    """Salted hashes, one salt per process (so equal values match within one log)."""

    def __init__(self, salt: bytes | None = None) -> None:
        self.salt = salt or secrets.token_bytes(16)

    def __call__(self, value: str) -> str:
        return HASHED + hashlib.sha256(self.salt + value.encode("utf-8", "replace")).hexdigest()


def _sensitive(text: str) -> bool:
    return bool(secret_findings(text) or pii_findings(text))


def _literal(node: Any) -> str | None:
    while isinstance(node, lark.Tree) and len(node.children) == 1:
        node = node.children[0]
    text = str(node) if isinstance(node, lark.Token) and node.type.endswith("STRING_LIT") else ""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else None


def _is_claims(node: Any) -> bool:
    """Whether node is `identity.claims` (under single-child wrappers)."""
    while isinstance(node, lark.Tree) and len(node.children) == 1:
        node = node.children[0]
    if not (isinstance(node, lark.Tree) and node.data == "member_dot"):
        return False
    base, name = node.children
    while isinstance(base, lark.Tree) and len(base.children) == 1:
        base = base.children[0]
    return str(name) == "claims" and isinstance(base, lark.Token) and str(base) == "identity"


def _claim_key(node: lark.Tree) -> tuple[str | None, Any]:
    """(name, the `identity.claims` node) when `node` reads one claim: `identity.claims.NAME`,
    `identity.claims["NAME"]` or `"NAME" in identity.claims` (name None: not a literal)."""
    first = node.children[0] if node.children else None
    if node.data == "member_dot" and _is_claims(first):
        return str(node.children[1]), first
    if node.data == "member_index" and _is_claims(first):
        return _literal(node.children[1]), first
    if node.data == "relation" and len(node.children) == 2:
        operator, right = node.children
        in_claims = isinstance(operator, lark.Tree) and operator.data == "relation_in"
        if in_claims and _is_claims(right):
            return _literal(operator.children[0]), right
    return None, None


def claim_reads(sources: Iterable[str]) -> frozenset[str] | None:
    """Claim names the expressions read by name; None when one uses the claims map (or the
    whole identity) any other way, so any claim may matter."""
    names: set[str] = set()
    for source in sources:
        try:
            tree = _parser.parse(source)
        except CELParseError:
            return None
        if _whole_identity(tree):
            return None
        claims = {id(n) for n in tree.iter_subtrees() if n.data == "member_dot" and _is_claims(n)}
        narrowed: set[int] = set()
        for node in tree.iter_subtrees():
            key, inner = _claim_key(node)
            if inner is None:
                continue
            if key is None:
                return None
            names.add(key)
            narrowed.update(id(n) for n in inner.iter_subtrees() if id(n) in claims)
        if claims - narrowed:
            return None
    return frozenset(names)


def _whole_identity(tree: lark.Tree) -> bool:
    """`identity` used other than as `identity.FIELD`."""
    dotted = {
        id(n.children[0])
        for n in tree.iter_subtrees()
        if n.data == "member_dot" and isinstance(n.children[0], lark.Tree)
    }
    for node in tree.iter_subtrees():
        if node.data == "member" and id(node) not in dotted:
            leaf = node
            while isinstance(leaf, lark.Tree) and len(leaf.children) == 1:
                leaf = leaf.children[0]
            if isinstance(leaf, lark.Token) and str(leaf) == "identity":
                return True
    return False


def _sources(policies: Iterable[CompiledPolicy]) -> list[str]:
    out = []
    for policy in policies:
        if policy.match is not None:
            out.append(policy.match.source)
        for rule in policy.rules:
            out.append(rule.when.source)
            for group in (rule.headers, rule.response_headers, rule.metadata):
                out += [e.source for _, e in group]
    return out


def _identity_record(
    identity: Identity, config: CompiledConfig | None, hasher: Hasher, subject: bool
) -> dict[str, Any]:
    reads = config.reads if config is not None else frozenset()
    whole = ("identity", None) in reads
    keep_claims = claim_reads(_sources(config.policies)) if config is not None else frozenset()
    out: dict[str, Any] = {}
    for name, value in dataclasses.asdict(identity).items():
        if name == "claims":
            continue
        text = json.dumps(value) if isinstance(value, list | tuple) else value
        clear = name in PLAIN_IDENTITY or whole or ("identity", name) in reads
        if name == "subject" and not subject:
            clear = False
        if isinstance(text, str) and text and (not clear or _sensitive(text)):
            value = hasher(text)
        out[name] = list(value) if isinstance(value, tuple) else value
    out["claims"] = {
        key: value
        if (keep_claims is None or key in keep_claims) and not _sensitive(json.dumps(value))
        else hasher(json.dumps(value))
        for key, value in identity.claims.items()
    }
    return out


def record(
    attrs: Attributes,
    masked_headers: frozenset[str],
    hasher: Hasher,
    config: CompiledConfig | None = None,
    subject: bool = True,
) -> dict[str, Any]:
    """The replayable record of one request (`config`: the one that decided it; without
    it every identity value that may identify the caller is hashed)."""
    request = attrs.request
    headers = {
        name: hasher(value) if name in masked_headers or _sensitive(value) else value
        for name, value in request.headers.items()
        if not name.startswith(":")
    }
    body = attrs.body.raw.decode("utf-8", errors="replace")
    query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
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
        "identity": _identity_record(attrs.identity, config, hasher, subject),
        "identity_resolved": config.needs_identity if config is not None else True,
    }


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
        names = claim_reads(_sources(policies))
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
    for name in _LISTS:
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
