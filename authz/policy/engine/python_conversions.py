"""The portable engine's conversions and functions, as the C++ runtime has them: `string()`,
`int()`, `uint()`, `double()`, `bool()`, `bytes()`, `timestamp()`, `duration()` and `type()`
accept and print exactly what it does; `size`, `contains`, `startsWith`, `endsWith` take only
their declared types; duration getters return the part, not the total."""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import celpy
from celpy import celtypes

from authz.policy.engine.python_kinds import (
    CLASSES,
    INT64,
    UINT64,
    Conversion,
    first_error,
    kind_of,
)
from authz.policy.engine.values import format_double

_BASE = celpy.evaluation.base_functions
_SPACE = " \t\n\v\f\r"  # what the C++ runtime strips around a number (ASCII only)

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
    kind = kind_of(value)
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
    kind = kind_of(value)
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
        return celtypes.IntType(micros_of(value - _EPOCH) // 10**6)
    raise TypeError("no such overload")


def _to_uint(value: Any) -> Any:
    kind = kind_of(value)
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
    kind = kind_of(value)
    if kind == "double":
        return value
    if kind in ("int", "uint"):
        return celtypes.DoubleType(float(int(value)))
    if kind == "string":
        return celtypes.DoubleType(_parse_double(str(value)))
    raise TypeError("no such overload")


def _to_bool(value: Any) -> Any:
    kind = kind_of(value)
    if kind == "bool":
        return value
    if kind == "string":
        if value not in _BOOL_TEXT:
            raise ValueError("cannot convert string to bool")
        return celtypes.BoolType(_BOOL_TEXT[value])
    raise TypeError("no such overload")


def _to_bytes(value: Any) -> Any:
    kind = kind_of(value)
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


def micros_of(delta: datetime.timedelta) -> int:
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
    micros = micros_of(value)
    seconds, rest = divmod(abs(micros), 10**6)
    return f"{'-' if micros < 0 else ''}{seconds}{_fraction(rest)}s"


def _timestamp_of(moment: datetime.datetime) -> Any:
    return celtypes.TimestampType(moment.astimezone(datetime.UTC))


def _to_timestamp(value: Any) -> Any:
    kind = kind_of(value)
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
    kind = kind_of(value)
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
            return celtypes.IntType(part(micros_of(value)))
        return builtin(value, *zone)

    return get


# --- other functions ------------------------------------------------------------------------


def _type(value: Any) -> Any:
    kind = kind_of(value)
    if kind not in CLASSES:
        raise TypeError("no such overload")
    return CLASSES[kind]


def _size(value: Any) -> Any:
    if kind_of(value) not in ("string", "bytes", "list", "map"):
        raise TypeError("no such overload")
    return celtypes.IntType(len(value))


def _string_test(method: Callable[[str, str], bool]) -> Callable[[Any, Any], Any]:
    def test(text: Any, part: Any) -> Any:
        error = first_error(text, part)
        if error is not None:
            return error
        if kind_of(text) != "string" or kind_of(part) != "string":
            raise TypeError("no such overload")
        return celtypes.BoolType(method(text, part))

    return test


FUNCTIONS: dict[str, Any] = {
    "string": Conversion("string", _to_string),
    "int": Conversion("int", _to_int),
    "uint": Conversion("uint", _to_uint),
    "double": Conversion("double", _to_double),
    "bool": Conversion("bool", _to_bool),
    "bytes": Conversion("bytes", _to_bytes),
    "timestamp": _to_timestamp,
    "duration": _to_duration,
    "type": Conversion("type", _type),
    "size": _size,
    "contains": _string_test(str.__contains__),
    "startsWith": _string_test(str.startswith),
    "endsWith": _string_test(str.endswith),
    **{name: _duration_getter(name) for name in _DURATION_PARTS},
}
