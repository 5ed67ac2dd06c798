"""CEL types as plain values: what the attribute registry declares and the checker infers.

A leaf module (imports nothing of the package), so every view can declare its own fields
next to the code that builds them, and the policy checker reads those declarations.

`record` is a closed set of named fields (the attribute roots, an LLM message, an MCP call):
reading a field outside it is a compile error. `nullable` marks a value that may be null
(`llm.max_tokens`): `!= null` is allowed on it, and ordering it against a string is not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class CelType:
    """One CEL type. `kind` is bool, int, uint, double, string, bytes, null, list, map,
    record, dyn, type, timestamp or duration."""

    kind: str
    elem: CelType | None = None  # list element, map value
    key: CelType | None = None  # map key
    fields: tuple[tuple[str, CelType], ...] | None = None  # record fields, in order
    nullable: bool = False
    name: str = ""  # record: what the message calls it ("llm", "llm message")

    def field(self, name: str) -> CelType | None:
        """The type of a record field, None when the record has no such field."""
        for field_name, field_type in self.fields or ():
            if field_name == name:
                return field_type
        return None

    @property
    def field_names(self) -> tuple[str, ...]:
        """The record's field names, in declaration order."""
        return tuple(name for name, _ in self.fields or ())

    def __str__(self) -> str:
        if self.kind == "list":
            text = f"list({self.elem})"
        elif self.kind == "map":
            text = f"map({self.key}, {self.elem})"
        elif self.kind == "record":
            text = self.name or "record"
        else:
            text = self.kind
        return f"{text} or null" if self.nullable and self.kind not in ("null", "dyn") else text


BOOL = CelType("bool")
INT = CelType("int")
UINT = CelType("uint")
DOUBLE = CelType("double")
STRING = CelType("string")
BYTES = CelType("bytes")
NULL = CelType("null")
DYN = CelType("dyn")
TYPE = CelType("type")
TIMESTAMP = CelType("timestamp")
DURATION = CelType("duration")


def list_of(elem: CelType) -> CelType:
    """list(elem)."""
    return CelType("list", elem=elem)


def map_of(key: CelType, value: CelType) -> CelType:
    """map(key, value)."""
    return CelType("map", elem=value, key=key)


def record(title: str, /, **fields: CelType) -> CelType:
    """A closed record called `title`: exactly these fields, in this order."""
    return CelType("record", fields=tuple(fields.items()), name=title)


def nullable(of: CelType) -> CelType:
    """The same type, or null."""
    return replace(of, nullable=True)


def non_null(of: CelType) -> CelType:
    """The same type without the null."""
    return replace(of, nullable=False) if of.nullable else of


def of_value(value: Any, name: str = "data") -> CelType:
    """The type of a plain value (the config's `data:` section): maps with string keys are
    closed records, so a typo in a key is refused; lists take their elements' common type."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        return STRING
    if isinstance(value, bytes):
        return BYTES
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return record(name, **{k: of_value(v, f"{name}.{k}") for k, v in value.items()})
        return map_of(DYN, DYN)
    if isinstance(value, list | tuple):
        return list_of(common([of_value(v, f"{name}[]") for v in value]))
    return DYN


def common(types: list[CelType]) -> CelType:
    """The one type all of these are (null folds into nullable), else dyn."""
    if not types:
        return DYN
    concrete = [t for t in types if t.kind != "null"]
    has_null = len(concrete) < len(types)
    if not concrete:
        return NULL
    first = non_null(concrete[0])
    if first.kind == "record":
        # Records from data lists: one shape only if every element has the same fields.
        if any(non_null(t) != first for t in concrete[1:]):
            return DYN
    elif any(_shape(t) != _shape(first) for t in concrete[1:]):
        return DYN
    if first.kind in ("list", "map") and any(non_null(t) != first for t in concrete[1:]):
        return DYN
    nullable_any = has_null or any(t.nullable for t in concrete)
    return nullable(first) if nullable_any else first


def _shape(t: CelType) -> str:
    return non_null(t).kind


def mismatch(value: Any, declared: CelType, where: str = "value") -> str:
    """Why a plain value does not have the declared type ('' when it does). Tests hold every
    view to its declaration with this, so a view can never hand a policy a surprise."""
    if value is None:
        return "" if declared.nullable or declared.kind in ("null", "dyn") else f"{where} is null"
    kind = declared.kind
    if kind == "dyn":
        return ""
    simple = {"bool": bool, "string": str, "bytes": bytes, "double": float}
    if kind in simple:
        ok = isinstance(value, simple[kind])
        return "" if ok else f"{where} is {type(value).__name__}, declared {declared}"
    if kind in ("int", "uint"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok and (-(2**63) <= value < 2**63 if kind == "int" else 0 <= value < 2**64)
        return "" if ok else f"{where} is {value!r}, declared {declared}"
    if kind == "list":
        if not isinstance(value, list | tuple):
            return f"{where} is {type(value).__name__}, declared {declared}"
        for index, item in enumerate(value):
            problem = mismatch(item, declared.elem or DYN, f"{where}[{index}]")
            if problem:
                return problem
        return ""
    if kind in ("map", "record"):
        if not isinstance(value, dict):
            return f"{where} is {type(value).__name__}, declared {declared}"
        if kind == "record":
            names = set(declared.field_names)
            if set(value) != names:
                return f"{where} has fields {sorted(value)}, declared {sorted(names)}"
            for name, field_type in declared.fields or ():
                problem = mismatch(value[name], field_type, f"{where}.{name}")
                if problem:
                    return problem
            return ""
        for key, item in value.items():
            problem = mismatch(key, declared.key or DYN, f"{where} key") or mismatch(
                item, declared.elem or DYN, f"{where}[{key!r}]"
            )
            if problem:
                return problem
        return ""
    return ""
