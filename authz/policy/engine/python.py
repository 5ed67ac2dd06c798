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
  `||` and `&&` run left to right and stop when the left side decides (python_eval.py);
- duration `getMilliseconds()` is the milliseconds part (500 for 1.5s), not the total;
- values come back as `values.py` describes (bytes, UTC datetimes, timedeltas, sorted maps,
  type names).

Left as they are (celpy's own types hold no more): timestamps and durations keep
microseconds, so nanoseconds are dropped where the C++ runtime keeps them.

The overrides live beside this module: python_kinds.py (what kind a celpy value is),
python_ops.py (operators), python_conversions.py (conversions and functions) and
python_eval.py (the interpreter subclass); this module puts them together as PyEngine.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from authz.errors import EvaluationError
from authz.functions import REQUEST_HANDLE, CelFunction, FunctionLibrary
from authz.policy.engine.base import CompileFailure, engine_failure
from authz.policy.engine.python_conversions import FUNCTIONS, micros_of
from authz.policy.engine.python_eval import Runner
from authz.policy.engine.python_kinds import kind_of, type_kind
from authz.policy.engine.python_ops import OPERATORS
from authz.policy.engine.values import TYPE_NAMES, sorted_map

# celpy logs every evaluation error at debug level through its own loggers; keep them quiet.
logging.getLogger("celpy").setLevel(logging.WARNING)

# celpy's functions replaced where it answers otherwise than the C++ runtime.
OVERRIDES: dict[str, Any] = {**OPERATORS, **FUNCTIONS}


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
            annotations={
                **{root: celtypes.MapType for root in roots},
                REQUEST_HANDLE: celtypes.IntType,
            },
            runner_class=Runner,
        )
        self._functions = {**OVERRIDES, **{f.name: _wrap(f, library) for f in library.functions}}

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

    def call(value: Any, handle: Any = None) -> Any:
        if isinstance(value, CELEvalError) or isinstance(handle, CELEvalError):
            return value if isinstance(value, CELEvalError) else handle
        try:
            result = impl(_plain(value), None if handle is None else int(handle))
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
    kind = kind_of(value)
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
        return datetime.timedelta(microseconds=micros_of(value))
    if kind == "type":
        return TYPE_NAMES.get(type_kind(value), type_kind(value))
    return value
