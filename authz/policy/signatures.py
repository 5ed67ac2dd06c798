"""The types CEL's standard functions and operators take, for the type checker
(policy/checker.py): function signatures, conversions, which types `==`, ordering, `in` and
arithmetic accept, and the message that says why not."""

from __future__ import annotations

from authz.celtypes import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    TYPE,
    UINT,
    CelType,
    common,
    list_of,
    non_null,
)

NUMBERS = frozenset({"int", "uint", "double"})
ORDERED = NUMBERS | {"string", "bytes", "bool", "timestamp", "duration"}
ANY = "any"  # an argument slot that takes every type
TYPE_NAMES = frozenset(
    {"bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type", "type"}
)
# The type of each kind of literal token.
LITERALS = {
    "INT_LIT": INT,
    "UINT_LIT": UINT,
    "FLOAT_LIT": DOUBLE,
    "STRING_LIT": STRING,
    "MLSTRING_LIT": STRING,
    "BYTES_LIT": BYTES,
    "BOOL_LIT": BOOL,
    "NULL_LIT": NULL,
}

# Standard functions: name -> list of (receiver kind or None, argument kinds, result type).
# Kinds are CelType.kind values; a receiver of None is the global call form.
Signature = tuple[str | None, tuple[str, ...], CelType]
_SIZED = ("string", "bytes", "list", "map")
_CONVERSIONS: dict[str, tuple[tuple[str, ...], CelType]] = {
    "int": (("int", "uint", "double", "string", "timestamp"), INT),
    "uint": (("int", "uint", "double", "string"), UINT),
    "double": (("int", "uint", "double", "string"), DOUBLE),
    "string": (
        ("int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"),
        STRING,
    ),
    "bytes": (("string", "bytes"), BYTES),
    "bool": (("bool", "string"), BOOL),
    "duration": (("string", "duration"), DURATION),
    "timestamp": (("string", "int", "timestamp"), TIMESTAMP),
}
_STRING_TESTS = ("contains", "startsWith", "endsWith", "matches")
_TIME_PARTS = (
    "getFullYear",
    "getMonth",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getDate",
)
_CLOCK_PARTS = ("getHours", "getMinutes", "getSeconds", "getMilliseconds")


def _standard() -> dict[str, list[Signature]]:
    sigs: dict[str, list[Signature]] = {}
    for kind in _SIZED:
        sigs.setdefault("size", []).extend([(None, (kind,), INT), (kind, (), INT)])
    for name, (kinds, result) in _CONVERSIONS.items():
        sigs[name] = [(None, (kind,), result) for kind in kinds]
    for name in _STRING_TESTS:
        sigs[name] = [("string", ("string",), BOOL)]
    sigs["matches"].append((None, ("string", "string"), BOOL))
    for name in _TIME_PARTS:
        sigs[name] = [("timestamp", (), INT), ("timestamp", ("string",), INT)]
    for name in _CLOCK_PARTS:
        sigs[name] = [
            ("timestamp", (), INT),
            ("timestamp", ("string",), INT),
            ("duration", (), INT),
        ]
    sigs["type"] = [(None, (ANY,), TYPE)]
    sigs["dyn"] = [(None, (ANY,), DYN)]
    return sigs


STANDARD = _standard()


def kind_of(t: CelType) -> str:
    """The kind of a type, null or not (`string` for `string?`)."""
    return non_null(t).kind


def _fits(actual: CelType, kind: str) -> bool:
    return kind == ANY or actual.kind == "dyn" or kind_of(actual) == kind


def comparable(left: CelType, right: CelType) -> bool:
    """Whether `==` between these types can be true (CEL's equality is only meaningful
    between values of one type; numbers compare across int, uint and double)."""
    if "dyn" in (left.kind, right.kind):
        return True
    if left.kind == "null" or right.kind == "null":
        other = right if left.kind == "null" else left
        return other.kind == "null" or other.nullable
    a, b = non_null(left), non_null(right)
    if a.kind in NUMBERS and b.kind in NUMBERS:
        return True
    if a.kind != b.kind:
        return False
    if a.kind == "list":
        return comparable(a.elem or DYN, b.elem or DYN)
    if a.kind == "map":
        return comparable(a.key or DYN, b.key or DYN) and comparable(a.elem or DYN, b.elem or DYN)
    if a.kind == "record":
        return a.name == b.name or a.name.startswith("data") or b.name.startswith("data")
    return True


def equality_problem(symbol: str, left: CelType, right: CelType) -> str | None:
    """Why `==` (or `!=`) between these types is never true, or None when it can be."""
    if comparable(left, right):
        return None
    if right.kind == "null" or left.kind == "null":
        never = right if left.kind == "null" else left
        return f"'{symbol}' compares {never}, which is never null, with null"
    hint = ""
    if kind_of(left) == "list" and comparable(left.elem or DYN, right):
        hint = " (to test membership, write `value in list`)"
    return f"'{symbol}' compares {left} with {right}{hint}"


def ordering_problem(symbol: str, left: CelType, right: CelType) -> str | None:
    """Why these types cannot be ordered, or None when they can."""
    if "dyn" in (left.kind, right.kind):
        return None
    a, b = kind_of(left), kind_of(right)
    if a not in ORDERED or b not in ORDERED or (a != b and not {a, b} <= NUMBERS):
        return f"'{symbol}' cannot order {left} and {right}"
    return None


def membership_problem(item: CelType, container: CelType) -> str | None:
    """Why `item in container` is never true, or None when it can be."""
    kind = kind_of(container)
    if container.kind == "dyn":
        return None
    if kind == "list":
        wanted = container.elem or DYN
    elif kind == "map":
        wanted = container.key or DYN
    elif kind == "record":
        wanted = STRING
    else:
        return f"'in' needs a list or a map on its right, not {container}"
    if not comparable(item, wanted) or item.kind == "null":
        return f"'in' looks for {item} in {container}, whose elements are {wanted}"
    return None


def arithmetic_result(op: str, a: str, b: str, left: CelType, right: CelType) -> CelType | None:
    if a == b and a in NUMBERS:
        return None if (op == "mod" and a == "double") else left
    if op == "add":
        if a == b and a in ("string", "bytes", "duration"):
            return left
        if a == b == "list":
            return list_of(common([left.elem or DYN, right.elem or DYN]))
        if {a, b} == {"timestamp", "duration"}:
            return TIMESTAMP
    if op == "sub":
        if a == b == "timestamp":
            return DURATION
        if a == b == "duration":
            return DURATION
        if (a, b) == ("timestamp", "duration"):
            return TIMESTAMP
    return None


def call_result(
    name: str, sigs: list[Signature], target: CelType | None, args: list[CelType]
) -> CelType | str:
    """The result type of the first signature the receiver and arguments fit, else the
    message that lists the forms the function takes."""
    for receiver, params, result in sigs:
        if (receiver is None) != (target is None) or len(params) != len(args):
            continue
        if target is not None and not _fits(target, receiver or ""):
            continue
        if all(_fits(a, p) for a, p in zip(args, params, strict=True)):
            return result
    shown = ", ".join(str(a) for a in args)
    call = f"{target}.{name}({shown})" if target is not None else f"{name}({shown})"
    forms = "; ".join(_form(name, r, p) for r, p, _ in sigs)
    return f"no function {call}: {name} takes {forms}"


def _form(name: str, receiver: str | None, params: tuple[str, ...]) -> str:
    shown = ", ".join("any value" if p == ANY else p for p in params)
    return f"{receiver}.{name}({shown})" if receiver else f"{name}({shown})"
