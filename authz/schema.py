"""The attribute registry: every root a CEL expression may read, declared once, with its type.

The type checker (policy/checker.py) reads these types when a file is loaded, on both
engines; the reference pass (policy/references.py) reads the field names to learn what a
request must build; the decision cache (cache.py) reads how each root is keyed, and the
attributes (attributes.py) which roots come from the body. The `llm` and `mcp` views
declare their own types next to the code that builds them; `data` is typed from the
config's `data:` section when a file is loaded.

Only values that really are dynamic are `dyn`: `body.json`, `identity.claims`, `metadata`
(Envoy's filter metadata) and `mcp.arguments`. A nullable field may be null; `!= null`
works on it, and ordering it against a string is refused like any other mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import authz.response_view as response_view
from authz import llm, mcp
from authz.celtypes import (
    BOOL,
    DYN,
    INT,
    STRING,
    CelType,
    list_of,
    map_of,
    nullable,
    record,
)

REQUEST = record(
    "request",
    id=STRING,
    method=STRING,
    path=STRING,
    query=map_of(STRING, list_of(STRING)),
    path_segments=list_of(STRING),
    host=STRING,
    scheme=STRING,
    protocol=STRING,
    headers=map_of(STRING, STRING),
    size=INT,
)


def _peer(name: str) -> CelType:
    return record(name, address=STRING, port=INT, principal=STRING)


BODY = record(
    "body",
    text=STRING,
    json=nullable(DYN),
    truncated=BOOL,
    size=INT,
    content_type=STRING,
    error=nullable(STRING),
)

IDENTITY = record(
    "identity",
    authenticated=BOOL,
    method=STRING,
    subject=STRING,
    issuer=STRING,
    audiences=list_of(STRING),
    groups=list_of(STRING),
    scopes=list_of(STRING),
    claims=map_of(STRING, DYN),
    spiffe_id=STRING,
    trust_domain=STRING,
    api_key=STRING,
    expires_at=INT,
    error=STRING,
)


def _declared(module: object, name: str) -> CelType:
    declared = getattr(module, "TYPE", None)
    if isinstance(declared, CelType):
        return declared
    return record(name, **{field: DYN for field in module.FIELDS})  # type: ignore[attr-defined]


# How the decision cache keys a root (cache.py): by the root's own value, by the body's
# bytes (a root built from the body: a hit never parses it), or not at all (the same for
# every request of a config).
BY_VALUE, BY_BODY, CONSTANT = "value", "body", "constant"


@dataclass(frozen=True)
class Root:
    """One attribute root: its CEL type, where it comes from, how the cache key reads it."""

    name: str
    type: CelType
    built_from: str  # what builds it: the CheckRequest part, a view, the config
    cache_key: str = BY_VALUE
    # Fields `serve --log-replay` keeps in clear whatever the policies read (they say how
    # the caller proved itself, not who it is); the others are hashed unless a loaded
    # expression reads them (observability/replay_record.py).
    replay_clear: frozenset[str] = frozenset()

    @property
    def from_body(self) -> bool:
        """Whether the root is built from the request body."""
        return self.cache_key == BY_BODY


REGISTRY: dict[str, Root] = {
    root.name: root
    for root in (
        Root("request", REQUEST, "attributes.HttpRequest (the http request's fields)"),
        Root("source", _peer("source"), "attributes.Peer (the downstream peer)"),
        Root("destination", _peer("destination"), "attributes.Peer (the local peer)"),
        Root("context", map_of(STRING, STRING), "the route's context extensions"),
        Root("metadata", map_of(STRING, map_of(STRING, DYN)), "Envoy's filter metadata"),
        Root("body", BODY, "body.BodyView", BY_BODY),
        Root(
            "identity",
            IDENTITY,
            "identity/resolver.py",
            replay_clear=frozenset(
                {"authenticated", "method", "error", "issuer", "audiences", "expires_at"}
            ),
        ),
        Root("llm", _declared(llm, "llm"), "llm/view.py", BY_BODY),
        Root("mcp", _declared(mcp, "mcp"), "mcp.py", BY_BODY),
        # typed from the loaded file's `data:` section when it is compiled
        Root("data", record("data"), "the config's `data:` section", CONSTANT),
    )
}
ROOT_TYPES: dict[str, CelType] = {name: root.type for name, root in REGISTRY.items()}
BODY_ROOTS = frozenset(name for name, root in REGISTRY.items() if root.from_body)

# `response` is read only by `response_rules:` (authz/response_path/), which Envoy's ext_proc
# filter runs on what the upstream answered. They read the request's roots too, except those
# the ext_proc stream does not carry (the request headers and the forwarded dynamic metadata
# arrive with it; the body, the peers and the route's context extensions do not).
RESPONSE_TYPE = response_view.TYPE
_NO_REQUEST_BODY = "Envoy does not send the request body to the response path"
NOT_IN_RESPONSE_RULES: dict[str, str] = {
    root: f"response rules cannot read '{root}': {why}"
    for root, why in {
        **{name: _NO_REQUEST_BODY for name in sorted(BODY_ROOTS)},
        "source": "the response path does not learn the peers",
        "destination": "the response path does not learn the peers",
        "context": "the response path does not learn the route's context extensions",
    }.items()
}
NOT_IN_REQUEST_RULES = "'response' is read only by response_rules"

# A root with a field set is closed: reading a field outside it is a compile error. A root
# mapped to None is an open map (route context, filter metadata), where any key may exist.
ROOTS: dict[str, frozenset[str] | None] = {
    name: frozenset(t.field_names) if t.kind == "record" and name != "data" else None
    for name, t in {**ROOT_TYPES, "response": RESPONSE_TYPE}.items()
}

MACROS_BINDING_A_VARIABLE = frozenset({"all", "exists", "exists_one", "map", "filter"})
