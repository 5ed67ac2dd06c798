"""How a CEL value leaves an engine: one Python shape and one text, whichever engine ran.

Both engines hand back plain Python values: bool, int (int and uint alike), float, str,
bytes, None, list, dict, an aware UTC datetime (timestamp), a timedelta (duration) and, for
a type value, its CEL name (`int`, `list`, `google.protobuf.Timestamp`, ...). A map comes
back with its keys in one fixed order (`map_order`): the C++ runtime iterates a map in a
per-process hashed order, so neither insertion order nor its order can be printed twice alike.

`format_double` is the text `string(double)` gives on both engines: the C++ runtime's,
which is cel-go's `strconv.FormatFloat(x, 'g', -1, 64)`: the shortest decimal that reads
back as the same double, in exponent form when the decimal exponent is below -4 or at least
6 (`1e+21`, `1.23456789125e+08`, `1e-07`), else positional without a trailing `.0` (`1`,
`-0`, `0.1`, `123456`); `nan` (`-nan` when its sign bit is set), `inf`, `-inf`.
"""

from __future__ import annotations

import math
from typing import Any

TYPE_NAMES = {
    "bool": "bool",
    "int": "int",
    "uint": "uint",
    "double": "double",
    "string": "string",
    "bytes": "bytes",
    "list": "list",
    "map": "map",
    "null": "null_type",
    "type": "type",
    "timestamp": "google.protobuf.Timestamp",
    "duration": "google.protobuf.Duration",
}
"""CEL's name for each kind of type value, keyed by a lower-case short name."""


def format_double(value: float) -> str:
    """`string(double)`, as the C++ runtime prints it (see the module docstring)."""
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    # repr is the shortest round-trip text; take its digits and decimal exponent from it.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    fraction = "" if fraction == "0" else fraction
    digits = whole + fraction
    significant = digits.lstrip("0")
    # The decimal exponent of the first significant digit.
    power = len(whole) + int(exponent or 0) - (len(digits) - len(significant)) - 1
    significant = significant.rstrip("0")
    if power < -4 or power >= 6:
        head, tail = significant[0], significant[1:]
        text = f"{head}.{tail}" if tail else head
        return f"{sign}{text}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if power < 0:
        return f"{sign}0.{'0' * (-power - 1)}{significant}"
    if len(significant) <= power + 1:
        return f"{sign}{significant}{'0' * (power + 1 - len(significant))}"
    return f"{sign}{significant[: power + 1]}.{significant[power + 1 :]}"


def map_order(key: Any) -> tuple[int, Any]:
    """The order map keys come back in: bools, then numbers, then strings, each ascending."""
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, int | float):
        return (1, key)
    return (2, str(key))


def sorted_map(items: dict[Any, Any]) -> dict[Any, Any]:
    """The same map with its keys in `map_order`."""
    return {k: items[k] for k in sorted(items, key=map_order)}
