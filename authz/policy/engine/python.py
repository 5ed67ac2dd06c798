"""The portable engine: cel-python (celpy), pure Python.

The C++ runtime is the reference. Where celpy answers otherwise, this adapter replaces
celpy's function for that operator or conversion, so both engines give the same value or
both an error (tests/unit/test_engine_agreement.py generates expressions to hold them to it):
- equality is heterogeneous, as the CEL spec says: values of different kinds are unequal
  (`body.json != null` on a map is true) instead of a "no such overload" error; numbers of
  any kind compare by value (`body.json.n == 5.0` when n is 5), an int against a double as
  cel-go and cel-cpp do it (the int is rounded to a double); maps compare by key lookup;
- ordering and `in` across int, uint and double work the same way; a map key is found by
  numeric value (`1u in {1: "a"}`);
- arithmetic refuses mixed kinds (`int + uint`, `bool + bool`, `duration * int`);
  `-2**63 % -1` overflows; a double divided by zero is IEEE (`-inf`, `nan`), not `inf`;
- `x[i]` refuses strings, negative and out-of-range indexes (celpy indexed from the end);
- `string()` prints `true`/`false`, doubles as `values.format_double`, timestamps and
  durations as the C++ runtime does, and refuses lists, maps and null;
- `int()`, `uint()`, `double()`, `bool()`, `bytes()`, `timestamp()`, `duration()` accept
  exactly what the C++ runtime accepts (ASCII digits, no `_` or `0x` in integers, hex
  and `nan`/`inf` in doubles, `int(-9223372036854775808.0)` and `uint(-0.5)` out of range,
  RFC 3339 timestamps, Go-style durations);
- `size`, `contains`, `startsWith`, `endsWith`, `||`, `&&` take only their declared types;
  `||` and `&&` run left to right and stop when the left side decides (see _Evaluator);
- duration `getMilliseconds()` is the milliseconds part (500 for 1.5s), not the total;
- values come back as `values.py` describes (bytes, UTC datetimes, timedeltas, sorted maps,
  type names).

Left as they are (celpy's own types hold no more): timestamps and durations keep
microseconds, so nanoseconds are dropped where the C++ runtime keeps them.
"""

from __future__ import annotations

import datetime
import logging
import math
import operator
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from authz.errors import EvaluationError
from authz.functions import CelFunction, FunctionLibrary
from authz.policy.engine.base import CompileFailure, engine_failure
from authz.policy.engine.values import TYPE_NAMES, format_double, sorted_map

# celpy logs every evaluation error at debug level through its own loggers; keep them quiet.
logging.getLogger("celpy").setLevel(logging.WARNING)

_BASE = celpy.evaluation.base_functions
INT64 = 2**63
UINT64 = 2**64
_SPACE = " \t\n\v\f\r"  # what the C++ runtime strips around a number (ASCII only)
NUMBERS = frozenset({"int", "uint", "double"})

# --- kinds ----------------------------------------------------------------------------------

_CLASSES: dict[str, type] = {
    "null": type(None),
    "bool": celtypes.BoolType,
    "int": celtypes.IntType,
    "uint": celtypes.UintType,
    "double": celtypes.DoubleType,
    "string": celtypes.StringType,
    "bytes": celtypes.BytesType,
    "list": celtypes.ListType,
    "map": celtypes.MapType,
    "timestamp": celtypes.TimestampType,
    "duration": celtypes.DurationType,
    "type": celtypes.TypeType,
}
_KIND_OF_CLASS = {cls: kind for kind, cls in _CLASSES.items()}


class _Conversion:
    """A conversion function (`int(x)`) that is also the name of its type (`type(x) == int`)."""

    __slots__ = ("__name__", "_convert", "kind")

    def __init__(self, kind: str, convert: Callable[[Any], Any]) -> None:
        self.kind, self._convert, self.__name__ = kind, convert, kind

    def __call__(self, *args: Any) -> Any:
        if len(args) != 1:
            raise TypeError("no such overload")
        return args[0] if isinstance(args[0], CELEvalError) else self._convert(args[0])


def _kind(value: Any) -> str:
    """The CEL kind of a celpy value: null, bool, int, uint, double, string, ..., type."""
    if value is None:
        return "null"
    if isinstance(value, bool | celtypes.BoolType):
        return "bool"
    if isinstance(value, celtypes.UintType):
        return "uint"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, datetime.timedelta):
        return "duration"
    if isinstance(value, type | _Conversion):
        return "type"
    return type(value).__name__


def _type_kind(value: Any) -> str:
    """For a type value, the kind it names (`int` for IntType or the `int` conversion)."""
    if isinstance(value, _Conversion):
        return value.kind
    return _KIND_OF_CLASS.get(value, getattr(value, "__name__", "?"))


def _error(*values: Any) -> CELEvalError | None:
    return next((v for v in values if isinstance(v, CELEvalError)), None)


# --- equality, ordering, membership ---------------------------------------------------------


def _compare_numbers(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 across int, uint and double; None when a NaN makes them unordered."""
    left_kind, right_kind = _kind(left), _kind(right)
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
    left_kind, right_kind = _kind(left), _kind(right)
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
        return _type_kind(left) == _type_kind(right)
    return bool(left == right)


_MISSING = object()
_LOOKUP_KINDS = frozenset({"bool", "int", "uint", "double", "string"})


def _same_key(stored: Any, wanted: Any) -> bool:
    stored_kind, wanted_kind = _kind(stored), _kind(wanted)
    if stored_kind in NUMBERS and wanted_kind in NUMBERS:
        return _compare_numbers(stored, wanted) == 0
    return stored_kind == wanted_kind and bool(stored == wanted)


def _lookup(mapping: dict[Any, Any], key: Any) -> tuple[bool, Any]:
    """Find a key as the C++ runtime does: numbers by value across int, uint and double;
    a value no map key can be (null, a list) is an error, not a miss."""
    if _kind(key) not in _LOOKUP_KINDS:
        raise TypeError(f"invalid map key type: {_kind(key)}")
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
    return _error(left, right) or celtypes.BoolType(_equal(left, right))


def _ne(left: Any, right: Any) -> Any:
    return _error(left, right) or celtypes.BoolType(not _equal(left, right))


_ORDERED = frozenset({"bool", "string", "bytes", "timestamp", "duration"})  # and numbers
_COMPARE = {"_<_": operator.lt, "_<=_": operator.le, "_>_": operator.gt, "_>=_": operator.ge}


def _ordering(name: str) -> Callable[[Any, Any], Any]:
    builtin, compare = _BASE[name], _COMPARE[name]

    def ordered(left: Any, right: Any) -> Any:
        left_kind, right_kind = _kind(left), _kind(right)
        if left_kind in NUMBERS and right_kind in NUMBERS:
            result = _compare_numbers(left, right)
            return celtypes.BoolType(result is not None and compare(result, 0))
        if left_kind != right_kind or left_kind not in _ORDERED:
            error = _error(left, right)
            if error is not None:
                return error
            raise TypeError("no such overload")
        return builtin(left, right)

    return ordered


def _in(item: Any, container: Any) -> Any:
    error = _error(item, container)
    if error is not None:
        return error
    if isinstance(container, list):
        return celtypes.BoolType(any(_equal(item, member) for member in container))
    if isinstance(container, dict):
        return celtypes.BoolType(_lookup(container, item)[0])
    raise TypeError("no such overload")


def _index(container: Any, key: Any) -> Any:
    error = _error(container, key)
    if error is not None:
        return error
    if isinstance(container, dict):
        found, value = _lookup(container, key)
        if not found:
            raise KeyError(key)
        return value
    if isinstance(container, list):
        kind = _kind(key)
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
        error = _error(left, right)
        if error is not None:
            return error
        kinds = (_kind(left), _kind(right))
        if kinds not in allowed:
            raise TypeError("no such overload")
        if name == "_/_" and kinds[0] == "double":
            return celtypes.DoubleType(_divide_doubles(float(left), float(right)))
        if name == "_%_" and kinds[0] == "int" and int(right) == -1 and int(left) == -INT64:
            raise ValueError("overflow")
        return builtin(left, right)

    return apply


def _is(value: Any, truth: bool) -> bool:
    return isinstance(value, celtypes.BoolType) and bool(value) is truth


def _logical(absorbing: bool) -> Callable[[Any, Any], Any]:
    """`||` (absorbing true) and `&&` (absorbing false): either side decides; otherwise both
    must be bools, and an error or a non-bool on either side is an error."""

    def combine(left: Any, right: Any) -> Any:
        if _is(left, absorbing) or _is(right, absorbing):
            return celtypes.BoolType(absorbing)
        if isinstance(left, celtypes.BoolType) and isinstance(right, celtypes.BoolType):
            return celtypes.BoolType(not absorbing)
        error = _error(left, right)
        if error is not None:
            return error
        raise TypeError("no such overload")

    return combine


# --- conversions ----------------------------------------------------------------------------

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_UINT_TEXT = re.compile(r"\+?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX_TEXT = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
)
_SPECIAL_TEXT = re.compile(r"([+-]?)(?:(inf(?:inity)?)|nan(?:\([0-9A-Za-z_]*\))?)", re.IGNORECASE)
_BOOL_TEXT = {
    **dict.fromkeys(("1", "t", "true", "TRUE", "True"), True),
    **dict.fromkeys(("0", "f", "false", "FALSE", "False"), False),
}


def _to_string(value: Any) -> Any:
    kind = _kind(value)
    if kind == "string":
        return value
    if kind == "bool":
        return celtypes.StringType("true" if value else "false")
    if kind in ("int", "uint"):
        return celtypes.StringType(str(int(value)))
    if kind == "double":
        return celtypes.StringType(format_double(float(value)))
    if kind == "bytes":
        return celtypes.StringType(bytes(value).decode("utf-8"))  # malformed UTF-8: error
    if kind == "timestamp":
        return celtypes.StringType(_format_timestamp(value))
    if kind == "duration":
        return celtypes.StringType(_format_duration(value))
    raise TypeError("no such overload")


def _to_int(value: Any) -> Any:
    kind = _kind(value)
    if kind == "int":
        return value
    if kind in ("uint", "bool"):  # the runtime converts a bool (its checker refuses one)
        return celtypes.IntType(_in_range(int(value), -INT64, INT64))
    if kind == "double":
        number = float(value)
        if math.isnan(number) or not -float(INT64) < number < float(INT64):
            raise ValueError("double out of int64 range")
        return celtypes.IntType(int(number))
    if kind == "string":
        return celtypes.IntType(_in_range(_parse_integer(value, _INT_TEXT), -INT64, INT64))
    if kind == "timestamp":
        return celtypes.IntType(_micros(value - _EPOCH) // 10**6)
    raise TypeError("no such overload")


def _to_uint(value: Any) -> Any:
    kind = _kind(value)
    if kind == "uint":
        return value
    if kind == "int":
        return celtypes.UintType(_in_range(int(value), 0, UINT64))
    if kind == "double":
        number = float(value)
        if math.isnan(number) or number < 0 or number >= float(UINT64):
            raise ValueError("double out of uint64 range")
        return celtypes.UintType(int(number))
    if kind == "string":
        return celtypes.UintType(_in_range(_parse_integer(value, _UINT_TEXT), 0, UINT64))
    raise TypeError("no such overload")


def _to_double(value: Any) -> Any:
    kind = _kind(value)
    if kind == "double":
        return value
    if kind in ("int", "uint"):
        return celtypes.DoubleType(float(int(value)))
    if kind == "string":
        return celtypes.DoubleType(_parse_double(str(value)))
    raise TypeError("no such overload")


def _to_bool(value: Any) -> Any:
    kind = _kind(value)
    if kind == "bool":
        return value
    if kind == "string":
        if value not in _BOOL_TEXT:
            raise ValueError("cannot convert string to bool")
        return celtypes.BoolType(_BOOL_TEXT[value])
    raise TypeError("no such overload")


def _to_bytes(value: Any) -> Any:
    kind = _kind(value)
    if kind == "bytes":
        return value
    if kind == "string":
        return celtypes.BytesType(str(value).encode("utf-8"))
    raise TypeError("no such overload")


def _in_range(number: int, low: int, high: int) -> int:
    if not low <= number < high:
        raise ValueError("integer out of range")
    return number


def _parse_integer(text: str, pattern: re.Pattern[str]) -> int:
    stripped = str(text).strip(_SPACE)
    if pattern.fullmatch(stripped) is None:
        raise ValueError("cannot convert string to integer")
    return int(stripped)


def _parse_double(text: str) -> float:
    """What strtod reads, with ASCII space around it: decimal, hex, inf, nan."""
    stripped = text.strip(_SPACE)
    if _DECIMAL_TEXT.fullmatch(stripped):
        return float(stripped)
    if _HEX_TEXT.fullmatch(stripped):
        try:
            return float.fromhex(stripped)
        except OverflowError:
            return -math.inf if stripped.startswith("-") else math.inf
    special = _SPECIAL_TEXT.fullmatch(stripped)
    if special is None:
        raise ValueError("cannot convert string to double")
    number = math.inf if special[2] else math.nan
    return -number if special[1] == "-" else number


# --- timestamps and durations ---------------------------------------------------------------

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_TIMESTAMP_TEXT = re.compile(
    r"[0-9]+-[0-9]{1,2}-[0-9]{1,2}[Tt][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2})?)?)"
)
_TIMESTAMP_PARTS = re.compile(
    r"([0-9]+)-([0-9]+)-([0-9]+).([0-9]+):([0-9]+):([0-9]+)(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2})?:?([0-9]{2})?)"
)
_DURATION_TEXT = re.compile(r"[+-]?(?:0|(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|ms|s|m|h))+)")
_DURATION_PART = re.compile(r"([0-9]*)\.?([0-9]*)(ns|us|ms|s|m|h)")
_UNIT_NANOS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_MAX_DURATION_SECONDS = 315_576_000_000  # +-10,000 years, as the runtime allows


def _micros(delta: datetime.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds


def _fraction(micros: int) -> str:
    """Fraction digits as the runtime prints them: none, 3 or 6 (9 when it has nanos)."""
    if micros == 0:
        return ""
    return f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"


def _format_timestamp(value: datetime.datetime) -> str:
    utc = value.astimezone(datetime.UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}{_fraction(utc.microsecond)}Z"
    )


def _format_duration(value: datetime.timedelta) -> str:
    micros = _micros(value)
    seconds, rest = divmod(abs(micros), 10**6)
    return f"{'-' if micros < 0 else ''}{seconds}{_fraction(rest)}s"


def _timestamp_of(moment: datetime.datetime) -> Any:
    return celtypes.TimestampType(moment.astimezone(datetime.UTC))


def _to_timestamp(value: Any) -> Any:
    kind = _kind(value)
    if kind == "timestamp":
        return value
    if kind == "int":
        try:
            return _timestamp_of(_EPOCH + datetime.timedelta(seconds=int(value)))
        except OverflowError:
            raise ValueError("timestamp overflow") from None
    if kind == "string":
        return _timestamp_of(_parse_timestamp(str(value)))
    raise TypeError("no such overload")


def _parse_timestamp(text: str) -> datetime.datetime:
    """RFC 3339 as the runtime reads it (absl's RFC3339_full, with its leniencies: one-digit
    fields, surrounding space, `t` and `z`, `+hh`, `+hhmm`, a leap second)."""
    stripped = text.strip(_SPACE)
    if _TIMESTAMP_TEXT.fullmatch(stripped) is None:
        raise ValueError("cannot convert string to timestamp")
    parts = _TIMESTAMP_PARTS.fullmatch(stripped)
    assert parts is not None
    year, month, day, hour, minute, second = (int(parts[i]) for i in range(1, 7))
    leap = second == 60
    fraction = "" if leap else (parts[7] or "")
    offset = datetime.timedelta(
        hours=int(parts[9] or 0), minutes=int(parts[10] or 0), seconds=int(parts[11] or 0)
    )
    if offset >= datetime.timedelta(hours=24) or int(parts[10] or 0) > 59:
        raise ValueError("cannot convert string to timestamp")
    if int(parts[11] or 0) > 59:
        raise ValueError("cannot convert string to timestamp")
    try:
        local = datetime.datetime(
            year, month, day, hour, minute, 59 if leap else second, int(fraction[:6].ljust(6, "0"))
        )
        moment = local - (offset if parts[8] == "+" else -offset) + datetime.timedelta(seconds=leap)
    except (ValueError, OverflowError):
        raise ValueError("cannot convert string to timestamp") from None
    return moment.replace(tzinfo=datetime.UTC)


def _to_duration(value: Any) -> Any:
    kind = _kind(value)
    if kind == "duration":
        return value
    if kind == "string":
        return _duration_of_nanos(_parse_duration(str(value)))
    raise TypeError("no such overload")


def _parse_duration(text: str) -> int:
    """Go-style durations as the runtime reads them (`1h30m`, `-1.5s`, `0`), in nanoseconds,
    the fraction of each part truncated to a quarter of a nanosecond as absl keeps it."""
    if _DURATION_TEXT.fullmatch(text) is None:
        raise ValueError("cannot convert string to duration")
    sign = -1 if text.startswith("-") else 1
    quarters = Fraction(0)
    for whole, fraction, unit in _DURATION_PART.findall(text):
        amount = Fraction(int(whole or 0)) + Fraction(int(fraction or 0), 10 ** len(fraction))
        quarters += math.floor(amount * _UNIT_NANOS[unit] * 4)
    if quarters > (_MAX_DURATION_SECONDS * 10**9 + 999_999_999) * 4:
        raise ValueError("duration out of range")
    return sign * int(quarters // 4)


def _duration_of_nanos(nanos: int) -> Any:
    micros = abs(nanos) // 1000 * (1 if nanos >= 0 else -1)
    # Built past DurationType's own range check, which rounds through a float.
    return datetime.timedelta.__new__(celtypes.DurationType, microseconds=micros)


def _truncate(number: int, divisor: int) -> int:
    return number // divisor if number >= 0 else -(-number // divisor)


_DURATION_PARTS: dict[str, Callable[[int], int]] = {
    "getHours": lambda micros: _truncate(micros, 3600 * 10**6),
    "getMinutes": lambda micros: _truncate(micros, 60 * 10**6),
    "getSeconds": lambda micros: _truncate(micros, 10**6),
    # The milliseconds part, not the total: -500 for -1.5s.
    "getMilliseconds": lambda micros: (1 if micros >= 0 else -1) * (abs(micros) // 1000 % 1000),
}


def _duration_getter(name: str) -> Callable[..., Any]:
    builtin, part = _BASE[name], _DURATION_PARTS[name]

    def get(value: Any, *zone: Any) -> Any:
        if isinstance(value, celtypes.DurationType) and not zone:
            return celtypes.IntType(part(_micros(value)))
        return builtin(value, *zone)

    return get


# --- other functions ------------------------------------------------------------------------


def _type(value: Any) -> Any:
    kind = _kind(value)
    if kind not in _CLASSES:
        raise TypeError("no such overload")
    return _CLASSES[kind]


def _size(value: Any) -> Any:
    if _kind(value) not in ("string", "bytes", "list", "map"):
        raise TypeError("no such overload")
    return celtypes.IntType(len(value))


def _string_test(method: Callable[[str, str], bool]) -> Callable[[Any, Any], Any]:
    def test(text: Any, part: Any) -> Any:
        error = _error(text, part)
        if error is not None:
            return error
        if _kind(text) != "string" or _kind(part) != "string":
            raise TypeError("no such overload")
        return celtypes.BoolType(method(text, part))

    return test


_OVERRIDES: dict[str, Any] = {
    "_==_": _eq,
    "_!=_": _ne,
    "_in_": _in,
    "_[_]": _index,
    "_||_": _logical(True),
    "_&&_": _logical(False),
    **{op: _ordering(op) for op in _COMPARE},
    **{op: _arithmetic(op) for op in _ARITHMETIC},
    "string": _Conversion("string", _to_string),
    "int": _Conversion("int", _to_int),
    "uint": _Conversion("uint", _to_uint),
    "double": _Conversion("double", _to_double),
    "bool": _Conversion("bool", _to_bool),
    "bytes": _Conversion("bytes", _to_bytes),
    "timestamp": _to_timestamp,
    "duration": _to_duration,
    "type": _Conversion("type", _type),
    "size": _size,
    "contains": _string_test(str.__contains__),
    "startsWith": _string_test(str.startswith),
    "endsWith": _string_test(str.endswith),
    **{name: _duration_getter(name) for name in _DURATION_PARTS},
}


class _Evaluator(celpy.evaluation.Evaluator):
    """celpy's interpreter, evaluating as the runtime does: `||` and `&&` left to right with
    short-circuit; an error in a map literal's key or value, or a key of a kind no map can
    have, makes the map an error (celpy kept errors as values), a duplicate key raises (as
    the runtime does); an error in a `map` or `filter` body is an error value (celpy raised
    it, past any `||` or `&&` that would have absorbed it)."""

    def sub_evaluator(self, ast: Any) -> _Evaluator:
        return _Evaluator(ast, activation=self.activation)

    def member_dot_arg(self, tree: Any) -> Any:
        # `map` and `filter` raise their body's error; as a value, `||` and `&&` absorb it.
        try:
            return super().member_dot_arg(tree)
        except CELEvalError as error:
            return error

    def conditionalor(self, tree: Any) -> Any:
        return self._short_circuit(tree, absorbing=True)

    def conditionaland(self, tree: Any) -> Any:
        return self._short_circuit(tree, absorbing=False)

    def _short_circuit(self, tree: Any, absorbing: bool) -> Any:
        """`a || b` and `a && b` left to right, as the runtime does: `b` is not evaluated
        when `a` decides. An error or a non-bool on one side still yields to the other side
        deciding; what the runtime raises (a duplicate map key) is raised here too, so
        whether it is reached must be the same."""
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        left = self.visit(tree.children[0])
        if _is(left, absorbing):
            return left
        right = self.visit(tree.children[1])
        try:
            return _logical(absorbing)(left, right)
        except TypeError as exc:
            return CELEvalError("no such overload", TypeError, exc.args)

    def mapinits(self, tree: Any) -> Any:
        values = self.visit_children(tree)
        error = _error(*values)
        if error is not None:
            return error
        result = celtypes.MapType()
        for key, value in zip(values[0::2], values[1::2], strict=True):
            if _kind(key) not in _KEY_KINDS:
                return CELEvalError(f"invalid map key type: {_kind(key)}")
            if any(_kind(stored) == _kind(key) and stored == key for stored in result):
                # The runtime raises rather than returning an error value.
                raise _RuntimeRaises("duplicate key in map")
            try:
                result[key] = value
            except TypeError:  # 1 and 1u: distinct keys in CEL, one key to a Python dict
                return CELEvalError("int and uint keys of the same value")
        return result


_KEY_KINDS = frozenset({"bool", "int", "uint", "string"})


class _RuntimeRaises(Exception):
    """Where the C++ runtime raises instead of returning an error value, so that no `||`
    or `&&` absorbs it; celpy's own handlers (ValueError, TypeError) must not catch it."""


class _Runner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return _Evaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


class PyProgram:
    """An expression prepared by celpy."""

    __slots__ = ("_runner",)

    def __init__(self, runner: Any) -> None:
        self._runner = runner

    def evaluate(self, bound: Any) -> Any:
        """Evaluate; celpy's error values and exceptions become EvaluationError."""
        try:
            value = self._runner.evaluate(bound)
        except CELEvalError as exc:
            raise EvaluationError(_message(exc)) from None
        except Exception as exc:  # celpy raising instead of returning an error value
            raise engine_failure("cel-python", exc) from None
        if isinstance(value, CELEvalError):
            raise EvaluationError(_message(value))
        return _plain(value, ordered=True)


class PyEngine:
    """Parses with celpy; the contract check in references.py stands in for a type checker."""

    name = "cel-python"

    def __init__(self, roots: list[str], library: FunctionLibrary) -> None:
        self._env = celpy.Environment(
            annotations={root: celtypes.MapType for root in roots}, runner_class=_Runner
        )
        self._functions = {**_OVERRIDES, **{f.name: _wrap(f, library) for f in library.functions}}

    def compile(self, source: str) -> PyProgram:
        """Parse; a syntax error keeps celpy's position."""
        try:
            ast = self._env.compile(source)
        except CELParseError as exc:
            raise CompileFailure("syntax error", exc.line or 1, exc.column or 1) from None
        return PyProgram(self._env.program(ast, functions=self._functions))

    def bind(self, variables: dict[str, Any]) -> Any:
        """Convert plain values to celpy's types once per request."""
        return {name: celpy.json_to_cel(value) for name, value in variables.items()}


def _wrap(function: CelFunction, library: FunctionLibrary) -> Any:
    impl = library.bound(function)

    def call(value: Any) -> Any:
        if isinstance(value, CELEvalError):
            return value
        try:
            result = impl(_plain(value))
        except EvaluationError as exc:  # a model's timeout: an error value, as on cel-cpp
            return CELEvalError(str(exc))
        if isinstance(result, list):
            return celtypes.ListType([celtypes.StringType(r) for r in result])
        if isinstance(result, float):
            return celtypes.DoubleType(result)
        return celtypes.StringType(result)

    return call


def _message(exc: CELEvalError) -> str:
    args = exc.args
    return str(args[0]) if args else "evaluation error"


def _plain(value: Any, ordered: bool = False) -> Any:
    """celpy values back to plain Python values; `ordered` puts map keys in values.map_order
    (a result), else maps keep their order (an argument to a project function)."""
    kind = _kind(value)
    if kind == "null":
        return None
    if kind == "bool":
        return bool(value)
    if kind in ("int", "uint"):
        return int(value)
    if kind == "double":
        return float(value)
    if kind == "string":
        return str(value)
    if kind == "bytes":
        return bytes(value)
    if kind == "list":
        return [_plain(v, ordered) for v in value]
    if kind == "map":
        items = {_plain(k, ordered): _plain(v, ordered) for k, v in value.items()}
        return sorted_map(items) if ordered else items
    if kind == "timestamp":
        utc = value.astimezone(datetime.UTC)
        return datetime.datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=datetime.UTC)
    if kind == "duration":
        return datetime.timedelta(microseconds=_micros(value))
    if kind == "type":
        return TYPE_NAMES.get(_type_kind(value), _type_kind(value))
    return value
