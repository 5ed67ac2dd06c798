"""The replayable record a decision log line can carry (`serve --log-replay`): the request
as `authz check` takes it, plus the identity that was resolved, with what is sensitive kept
only as a salted hash. What is kept in clear is described in authz/replay.py, which re-decides
these records under a candidate config."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from typing import Any

import lark
from celpy.celparser import CELParseError, CELParser

from authz.attributes import Attributes
from authz.detectors import pii_findings, secret_findings
from authz.identity.model import Identity
from authz.policy.compiler import CompiledConfig, CompiledPolicy
from authz.schema import REGISTRY

HASHED = "hashed:"
# The registry says which identity fields there are and which are kept in clear always.
IDENTITY_ROOT = REGISTRY["identity"]
LISTS = tuple(n for n, t in IDENTITY_ROOT.type.fields or () if t.kind == "list")
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


def sources_of(policies: Iterable[CompiledPolicy]) -> list[str]:
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
    keep_claims = claim_reads(sources_of(config.policies)) if config is not None else frozenset()
    out: dict[str, Any] = {}
    for name in IDENTITY_ROOT.type.field_names:
        if name == "claims":
            continue
        value = getattr(identity, name)
        text = json.dumps(value) if isinstance(value, list | tuple) else value
        clear = name in IDENTITY_ROOT.replay_clear or whole or ("identity", name) in reads
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
