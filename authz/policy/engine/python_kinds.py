"""What kind of CEL value a celpy value is, for the portable engine's overrides."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from celpy import celtypes
from celpy.evaluation import CELEvalError

INT64 = 2**63
UINT64 = 2**64
NUMBERS = frozenset({"int", "uint", "double"})

CLASSES: dict[str, type] = {
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
_KIND_OF_CLASS = {cls: kind for kind, cls in CLASSES.items()}


class Conversion:
    """A conversion function (`int(x)`) that is also the name of its type (`type(x) == int`)."""

    __slots__ = ("__name__", "_convert", "kind")

    def __init__(self, kind: str, convert: Callable[[Any], Any]) -> None:
        self.kind, self._convert, self.__name__ = kind, convert, kind

    def __call__(self, *args: Any) -> Any:
        if len(args) != 1:
            raise TypeError("no such overload")
        return args[0] if isinstance(args[0], CELEvalError) else self._convert(args[0])


def kind_of(value: Any) -> str:
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
    if isinstance(value, type | Conversion):
        return "type"
    return type(value).__name__


def type_kind(value: Any) -> str:
    """For a type value, the kind it names (`int` for IntType or the `int` conversion)."""
    if isinstance(value, Conversion):
        return value.kind
    return _KIND_OF_CLASS.get(value, getattr(value, "__name__", "?"))


def first_error(*values: Any) -> CELEvalError | None:
    return next((v for v in values if isinstance(v, CELEvalError)), None)
