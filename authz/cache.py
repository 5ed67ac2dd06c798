"""The decision cache: a decision is reused for a request that agrees on every attribute the
selected policy reads (derived from its compiled expressions), and on nothing else.

cachetools TTL+LRU, bounded in entries, one per loaded config (a reload starts empty).
Only route-selected policies are cached (`context.policy`): `match` selection reads every
policy's `match`, which the key would then have to cover. Identity is resolved before the
lookup on every request, so an expired token never rides on a cached allow; nothing else a
policy can read depends on the clock or on chance.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from typing import Any

import cachetools

from authz.attributes import Attributes
from authz.decision import Decision
from authz.schema import BODY_ROOTS, BY_VALUE, REGISTRY

Path = tuple[str, ...]


def key_paths(
    reads: Iterable[tuple[str, str | None]],
    header_keys: Iterable[str],
    all_headers: bool,
    require_identity: bool,
) -> tuple[Path, ...]:
    """The attribute paths a policy's decision depends on."""
    paths: set[Path] = set()
    for root, field in reads:
        if (root, field) == ("request", "headers"):
            continue
        paths.add((root,) if field is None else (root, field))
    if all_headers or ("request",) in paths:
        paths.add(("request", "headers"))
    else:
        paths.update(("request", "headers", name) for name in header_keys)
    if require_identity:
        paths.update({("identity", "authenticated"), ("identity", "error")})
    return tuple(sorted(paths))


def _value(attrs: Attributes, path: Path) -> Any:
    """The value at an attribute path, straight from the typed attributes. A root built
    from the body is keyed by the body token instead (a cache hit never parses JSON or
    builds a view); a constant one (data) not at all. A root the registry does not know
    raises (KeyError): the check denies rather than key a decision without it."""
    root = path[0]
    if REGISTRY[root].cache_key != BY_VALUE:
        return None
    if root == "request":
        request = attrs.request
        if len(path) == 1:
            return request.as_cel()
        if path[1] == "headers":
            return request.headers.get(path[2]) if len(path) == 3 else request.headers
        return request.path if path[1] == "path_segments" else getattr(request, path[1])
    if root in ("source", "destination"):
        peer = getattr(attrs, root)
        return peer.as_cel() if len(path) == 1 else getattr(peer, path[1])
    if root == "identity":
        return attrs.identity.as_cel() if len(path) == 1 else getattr(attrs.identity, path[1])
    if root == "metadata":
        return attrs.metadata()
    if root == "context":
        return attrs.context
    raise KeyError(f"the cache key does not know how to read '{root}'")


def _body_token(attrs: Attributes) -> list[Any]:
    body = attrs.body
    return [
        hashlib.blake2b(body.raw, digest_size=20).hexdigest(),
        body.truncated,
        body.content_type,
        attrs.request.path,
        attrs.request.headers.get("anthropic-version"),
        # The mcp view reads the method (GET stream, DELETE) and the session headers too.
        attrs.request.method,
        attrs.request.headers.get("mcp-session-id"),
        attrs.request.headers.get("mcp-protocol-version"),
    ]


class DecisionCache:
    """Decisions by (policy, values of the paths it reads)."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self._entries: cachetools.TTLCache[bytes, Decision] = cachetools.TTLCache(
            maxsize=max_entries, ttl=ttl_seconds
        )
        self._lock = threading.Lock()

    @staticmethod
    def key(policy: str, paths: tuple[Path, ...], attrs: Attributes) -> bytes:
        """A digest of the policy name and every value it reads."""
        values: list[Any] = [policy, *(_value(attrs, p) for p in paths)]
        if any(p[0] in BODY_ROOTS for p in paths):
            values += _body_token(attrs)
        text = json.dumps(values, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).digest()

    def get(self, key: bytes, decision_id: str) -> Decision | None:
        """A cached decision under a fresh decision id, or None."""
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            return None
        return found.reissued(decision_id)

    def put(self, key: bytes, decision: Decision) -> None:
        """Remember a decision."""
        with self._lock:
            self._entries[key] = decision

    def __len__(self) -> int:
        return len(self._entries)
