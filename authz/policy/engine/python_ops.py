"""The portable engine's operators, as the C++ runtime evaluates them: heterogeneous
equality, ordering and `in` across int, uint and double, map lookup by numeric value,
strict indexing, arithmetic that refuses mixed kinds, and `||` / `&&` over errors."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import celpy
from celpy import celtypes

from authz.policy.engine.python_kinds import INT64, NUMBERS, UINT64, first_error, kind_of, type_kind

_BASE = celpy.evaluation.base_functions


def _compare_numbers(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 across int, uint and double; None when a NaN makes them unordered."""
    left_kind, right_kind = kind_of(left), kind_of(right)
    if left_kind == right_kind == "double":
        a, b = float(left), float(right)
        return None if math.isnan(a) or math.isnan(b) else (a > b) - (a < b)
    if left_kind == "double":
        return _compare_double(float(left), int(right), right_kind)
    if right_kind == "double":
        result = _compare_double(float(right), int(left), left_kind)
        return None if result is None else -result
    a, b = int(left), int(right)
    return (a > b) - (a < b)


def _compare_double(double: float, integer: int, kind: str) -> int | None:
    """A double against an int or uint, as cel-go's compareDoubleInt/compareDoubleUint: out
    of the integer's range decides by sign; in range, the integer is rounded to a double."""
    if math.isnan(double):
        return None
    low, high = (-float(INT64), float(INT64)) if kind == "int" else (0.0, float(UINT64))
    if double < low:
        return -1
    if double > high:
        return 1
    rounded = float(integer)
    return (double > rounded) - (double < rounded)


def _equal(left: Any, right: Any) -> bool:
    left_kind, right_kind = kind_of(left), kind_of(right)
    if left_kind in NUMBERS and right_kind in NUMBERS:
        return _compare_numbers(left, right) == 0
    if left_kind != right_kind:
        return False
    if left_kind == "list":
        return len(left) == len(right) and all(
            _equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if left_kind == "map":
        if len(left) != len(right):
            return False
        for key, value in left.items():
            found, other = _lookup(right, key)
            if not found or not _equal(value, other):
                return False
        return True
    if left_kind == "type":
        return type_kind(left) == type_kind(right)
    return bool(left == right)


_MISSING = object()
_LOOKUP_KINDS = frozenset({"bool", "int", "uint", "double", "string"})


def _same_key(stored: Any, wanted: Any) -> bool:
    stored_kind, wanted_kind = kind_of(stored), kind_of(wanted)
    if stored_kind in NUMBERS and wanted_kind in NUMBERS:
        return _compare_numbers(stored, wanted) == 0
    return stored_kind == wanted_kind and bool(stored == wanted)


def _lookup(mapping: dict[Any, Any], key: Any) -> tuple[bool, Any]:
    """Find a key as the C++ runtime does: numbers by value across int, uint and double;
    a value no map key can be (null, a list) is an error, not a miss."""
    if kind_of(key) not in _LOOKUP_KINDS:
        raise TypeError(f"invalid map key type: {kind_of(key)}")
    if isinstance(key, str):
        try:
            value = mapping.get(key, _MISSING)
        except TypeError:  # a hash collision with a key of another kind
            value = _MISSING
        if value is not _MISSING:
            return True, value
    for stored, value in mapping.items():
        if _same_key(stored, key):
            return True, value
    return False, None


def _eq(left: Any, right: Any) -> Any:
    return first_error(left, right) or celtypes.BoolType(_equal(left, right))


def _ne(left: Any, right: Any) -> Any:
    return first_error(left, right) or celtypes.BoolType(not _equal(left, right))


_ORDERED = frozenset({"bool", "string", "bytes", "timestamp", "duration"})  # and numbers
_COMPARE = {"_<_": operator.lt, "_<=_": operator.le, "_>_": operator.gt, "_>=_": operator.ge}


def _ordering(name: str) -> Callable[[Any, Any], Any]:
    builtin, compare = _BASE[name], _COMPARE[name]

    def ordered(left: Any, right: Any) -> Any:
        left_kind, right_kind = kind_of(left), kind_of(right)
        if left_kind in NUMBERS and right_kind in NUMBERS:
            result = _compare_numbers(left, right)
            return celtypes.BoolType(result is not None and compare(result, 0))
        if left_kind != right_kind or left_kind not in _ORDERED:
            error = first_error(left, right)
            if error is not None:
                return error
            raise TypeError("no such overload")
        return builtin(left, right)

    return ordered


def _in(item: Any, container: Any) -> Any:
    error = first_error(item, container)
    if error is not None:
        return error
    if isinstance(container, list):
        return celtypes.BoolType(any(_equal(item, member) for member in container))
    if isinstance(container, dict):
        return celtypes.BoolType(_lookup(container, item)[0])
    raise TypeError("no such overload")


def _index(container: Any, key: Any) -> Any:
    error = first_error(container, key)
    if error is not None:
        return error
    if isinstance(container, dict):
        found, value = _lookup(container, key)
        if not found:
            raise KeyError(key)
        return value
    if isinstance(container, list):
        kind = kind_of(key)
        if kind == "double" and float(key).is_integer():
            key, kind = int(key), "int"
        if kind not in ("int", "uint"):
            raise TypeError("no such overload")
        if not 0 <= int(key) < len(container):
            raise IndexError(f"index {int(key)} out of range")
        return container[int(key)]
    raise TypeError("no such overload")


# --- arithmetic and logic -------------------------------------------------------------------

_ARITHMETIC: dict[str, frozenset[tuple[str, str]]] = {
    "_+_": frozenset(
        {(k, k) for k in ("int", "uint", "double", "string", "bytes", "list", "duration")}
        | {("timestamp", "duration"), ("duration", "timestamp")}
    ),
    "_-_": frozenset(
        {(k, k) for k in ("int", "uint", "double", "duration")}
        | {("timestamp", "timestamp"), ("timestamp", "duration")}
    ),
    "_*_": frozenset({(k, k) for k in ("int", "uint", "double")}),
    "_/_": frozenset({(k, k) for k in ("int", "uint", "double")}),
    "_%_": frozenset({("int", "int"), ("uint", "uint")}),
}


def _divide_doubles(left: float, right: float) -> float:
    """IEEE division, which Python refuses for a zero divisor."""
    if right != 0:
        return left / right
    if math.isnan(left):
        return left
    if left == 0:
        return math.inf - math.inf  # the hardware's default NaN, as C++ computes 0.0 / 0.0
    return math.copysign(math.inf, left) * math.copysign(1.0, right)


def _arithmetic(name: str) -> Callable[[Any, Any], Any]:
    builtin, allowed = _BASE[name], _ARITHMETIC[name]

    def apply(left: Any, right: Any) -> Any:
        error = first_error(left, right)
        if error is not None:
            return error
        kinds = (kind_of(left), kind_of(right))
        if kinds not in allowed:
            raise TypeError("no such overload")
        if name == "_/_" and kinds[0] == "double":
            return celtypes.DoubleType(_divide_doubles(float(left), float(right)))
        if name == "_%_" and kinds[0] == "int" and int(right) == -1 and int(left) == -INT64:
            raise ValueError("overflow")
        return builtin(left, right)

    return apply


def is_bool(value: Any, truth: bool) -> bool:
    return isinstance(value, celtypes.BoolType) and bool(value) is truth


def logical(absorbing: bool) -> Callable[[Any, Any], Any]:
    """`||` (absorbing true) and `&&` (absorbing false): either side decides; otherwise both
    must be bools, and an error or a non-bool on either side is an error."""

    def combine(left: Any, right: Any) -> Any:
        if is_bool(left, absorbing) or is_bool(right, absorbing):
            return celtypes.BoolType(absorbing)
        if isinstance(left, celtypes.BoolType) and isinstance(right, celtypes.BoolType):
            return celtypes.BoolType(not absorbing)
        error = first_error(left, right)
        if error is not None:
            return error
        raise TypeError("no such overload")

    return combine


OPERATORS: dict[str, Any] = {
    "_==_": _eq,
    "_!=_": _ne,
    "_in_": _in,
    "_[_]": _index,
    "_||_": logical(True),
    "_&&_": logical(False),
    **{op: _ordering(op) for op in _COMPARE},
    **{op: _arithmetic(op) for op in _ARITHMETIC},
}
