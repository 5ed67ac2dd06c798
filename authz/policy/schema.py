"""The attribute registry: every root a CEL expression may read, declared once, with its type.

The type checker (policy/checker.py) reads these types when a file is loaded, on both
engines; the reference pass (policy/references.py) reads the field names to learn what a
request must build. The `llm` and `mcp` views declare their own types next to the code that
builds them; `data` is typed from the config's `data:` section when a file is loaded.

Only values that really are dynamic are `dyn`: `body.json`, `identity.claims`, `metadata`
(Envoy's filter metadata) and `mcp.arguments`. A nullable field may be null; `!= null`
works on it, and ordering it against a string is refused like any other mismatch.
"""

from __future__ import annotations

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


ROOT_TYPES: dict[str, CelType] = {
    "request": REQUEST,
    "source": _peer("source"),
    "destination": _peer("destination"),
    "context": map_of(STRING, STRING),
    "metadata": map_of(STRING, map_of(STRING, DYN)),
    "body": BODY,
    "identity": IDENTITY,
    "llm": _declared(llm, "llm"),
    "mcp": _declared(mcp, "mcp"),
    "data": record("data"),  # replaced by the type of the loaded file's `data:` section
}

# `response` is read only by `response_rules:` (authz/response_path/), which Envoy's ext_proc
# filter runs on what the upstream answered. They read the request's roots too, except those
# the ext_proc stream does not carry (the request headers and the forwarded dynamic metadata
# arrive with it; the body, the peers and the route's context extensions do not).
RESPONSE_TYPE = response_view.TYPE
NOT_IN_RESPONSE_RULES: dict[str, str] = {
    root: f"response rules cannot read '{root}': {why}"
    for root, why in {
        "body": "Envoy does not send the request body to the response path",
        "llm": "Envoy does not send the request body to the response path",
        "mcp": "Envoy does not send the request body to the response path",
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
