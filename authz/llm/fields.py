"""One field of an LLM request read strictly: the value the provider would act on, or None
(or "") with an error naming the field as the body spells it. Views never coerce."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from authz.llm.view import MAX_MESSAGES, LlmView

INT64 = 1 << 63
INT32 = 1 << 31

_DECIMAL_INT = re.compile(r"-?[0-9]{1,40}")
_DECIMAL = re.compile(r"-?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,4})?")


def _number(
    view: LlmView,
    value: Any,
    name: str,
    decimal: re.Pattern[str] | None,
    parse: Callable[[str], int | float],
    not_one: str,
) -> int | float | None:
    """`value` if it is a JSON number (or, with `decimal`, a string of one), else None:
    absent, or noted as `not_one`. A bool is not a number, though Python counts it one."""
    if value is None:
        return None
    if decimal is not None and isinstance(value, str) and decimal.fullmatch(value):
        value = parse(value)  # proto3 JSON (Gemini) reads "8192" as 8192, "0.5" as 0.5
    if isinstance(value, bool) or not isinstance(value, int | float):
        view.note(f"{name}: {not_one}")
        return None
    return value


def read_int(
    view: LlmView, value: Any, name: str, *, high: int = INT64, strings: bool = False
) -> int | None:
    """A token count: an integral number in [1, high), None when absent."""
    value = _number(view, value, name, _DECIMAL_INT if strings else None, int, "not an integer")
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value) or (math.isfinite(value) and not value.is_integer()):
            view.note(f"{name}: not an integer")
            return None
        if not math.isfinite(value) or abs(value) >= INT64:
            # The JSON parser keeps integers past int64 as doubles: never a usable count.
            view.note(f"{name}: out of range")
            return None
        value = int(value)
    if value >= high:
        view.note(f"{name}: out of range")
        return None
    if value < 1:
        view.note(f"{name}: less than 1")
        return None
    return value


def read_double(view: LlmView, value: Any, name: str, *, strings: bool = False) -> float | None:
    """A number such as temperature, None when absent."""
    value = _number(view, value, name, _DECIMAL if strings else None, float, "not a number")
    if value is None:
        return None
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        view.note(f"{name}: not a finite number")
        return None
    return number


def read_flag(view: LlmView, value: Any, name: str) -> bool | None:
    """A JSON bool; absent is false (what the providers do)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    view.note(f"{name}: not a bool")
    return None


def read_string(view: LlmView, value: Any, name: str) -> str | None:
    """A JSON string, None when absent."""
    if value is None or isinstance(value, str):
        return value
    view.note(f"{name}: not a string")
    return None


def read_name(view: LlmView, value: Any, where: str) -> str:
    """A tool's name: a JSON string, "" when absent or of another type."""
    if isinstance(value, str):
        return value
    if value is not None:
        view.note(f"{where}: not a string")
    return ""


def read_list(value: Any, view: LlmView, what: str) -> list[Any]:
    """A JSON list, at most MAX_MESSAGES items of it; [] when absent or not a list."""
    if value is None:
        return []
    if not isinstance(value, list):
        view.note(f"{what}: not a list")
        return []
    if len(value) > MAX_MESSAGES:
        view.note(f"{what}: more than {MAX_MESSAGES} items; the rest are not in the view")
        return value[:MAX_MESSAGES]
    return value


def read_objects(value: Any, view: LlmView, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, item) for each JSON object in a list read by read_list; other items are noted
    and skipped."""
    for i, item in enumerate(read_list(value, view, what)):
        where = f"{what}[{i}]"
        if isinstance(item, dict):
            yield where, item
        else:
            view.note(f"{where}: not an object")


def read_role(view: LlmView, value: Any, where: str, known: frozenset[str]) -> str:
    """The role as sent; an error when the provider would refuse it."""
    if value is None:
        view.note(f"{where}: missing")
        return ""
    if not isinstance(value, str):
        view.note(f"{where}: not a string")
        return ""
    if value not in known:
        view.note(f"{where}: unknown role {value[:40]!r}")
    return value


def read_either(view: LlmView, obj: dict[str, Any], camel: str, snake: str, where: str) -> Any:
    """A proto3 JSON field, spelt lowerCamel or snake_case (both: refused, as Gemini does)."""
    if camel in obj and snake in obj:
        view.note(f"{where}: both {camel} and {snake}")
        return None
    return obj.get(camel, obj.get(snake))
