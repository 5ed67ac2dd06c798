"""The attribute contract: which variables a CEL expression may read, and their fields.

A root with a field set is closed: reading a field outside it is a compile error. A root
mapped to None is an open map (route context, filter metadata), where any key may exist.
"""

from __future__ import annotations

import dataclasses

from authz import llm, mcp
from authz.identity.model import Identity

PEER_FIELDS = frozenset({"address", "port", "principal"})

ROOTS: dict[str, frozenset[str] | None] = {
    "request": frozenset(
        {
            "id",
            "method",
            "path",
            "query",
            "path_segments",
            "host",
            "scheme",
            "protocol",
            "headers",
            "size",
        }
    ),
    "source": PEER_FIELDS,
    "destination": PEER_FIELDS,
    "context": None,
    "data": None,  # the config's own `data:` section
    "metadata": None,
    "body": frozenset({"text", "json", "truncated", "size", "content_type", "error"}),
    "identity": frozenset(f.name for f in dataclasses.fields(Identity)),
    "llm": frozenset(llm.FIELDS),
    "mcp": frozenset(mcp.FIELDS),
}

# Functions and macros every expression may call, on both engines.
FUNCTIONS = frozenset(
    {
        "has",
        "size",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "bool",
        "type",
        "dyn",
        "duration",
        "timestamp",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "all",
        "exists",
        "exists_one",
        "map",
        "filter",
        "getFullYear",
        "getMonth",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getDate",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)

MACROS_BINDING_A_VARIABLE = frozenset({"all", "exists", "exists_one", "map", "filter"})
