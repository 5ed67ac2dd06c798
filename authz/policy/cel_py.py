"""The portable engine: cel-python (celpy), pure Python.

celpy differs from the C++ runtime in places the documented idioms rely on; this adapter
closes those gaps so both engines decide alike:
- equality is heterogeneous, as the CEL spec says: values of different kinds are unequal
  (`body.json != null` on a map is true) instead of a "no such overload" error, and an int
  equals the double of the same value (`body.json.n == 5.0` when n is 5);
- ordering and list membership across int and double work as in the C++ runtime.
"""

from __future__ import annotations

import logging
import operator
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from authz.errors import EvaluationError
from authz.functions import CelFunction, FunctionLibrary
from authz.policy.engines import CompileFailure, engine_failure

# celpy logs every evaluation error at debug level through its own loggers; keep them quiet.
logging.getLogger("celpy").setLevel(logging.WARNING)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool | celtypes.BoolType):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _equal(left: Any, right: Any) -> bool:
    kind = _kind(left)
    if kind != _kind(right):
        return False
    if kind == "list":
        return len(left) == len(right) and all(
            _equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if kind == "map":
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if kind == "number":
        # Python compares int and float exactly; celpy's own types refuse mixed operands.
        return _native(left) == _native(right)
    return bool(left == right)


def _native(number: Any) -> int | float:
    return float(number) if isinstance(number, float) else int(number)


def _eq(left: Any, right: Any) -> Any:
    for value in (left, right):
        if isinstance(value, CELEvalError):
            return value
    return celtypes.BoolType(_equal(left, right))


def _ne(left: Any, right: Any) -> Any:
    result = _eq(left, right)
    return result if isinstance(result, CELEvalError) else celtypes.BoolType(not result)


def _ordering(name: str) -> Any:
    builtin = celpy.evaluation.base_functions[name]
    compare = {"_<_": operator.lt, "_<=_": operator.le, "_>_": operator.gt, "_>=_": operator.ge}[
        name
    ]

    def ordered(left: Any, right: Any) -> Any:
        if (_kind(left) == _kind(right) == "number") and type(left) is not type(right):
            return celtypes.BoolType(compare(_native(left), _native(right)))
        return builtin(left, right)

    return ordered


def _in(item: Any, container: Any) -> Any:
    for value in (item, container):
        if isinstance(value, CELEvalError):
            return value
    if isinstance(container, list):
        return celtypes.BoolType(any(_equal(item, member) for member in container))
    return celpy.evaluation.base_functions["_in_"](item, container)


_OVERRIDES = {
    "_==_": _eq,
    "_!=_": _ne,
    "_in_": _in,
    **{op: _ordering(op) for op in ("_<_", "_<=_", "_>_", "_>=_")},
}


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
        return _plain(value)


class PyEngine:
    """Parses with celpy; the contract check in references.py stands in for a type checker."""

    name = "cel-python"

    def __init__(self, roots: list[str], library: FunctionLibrary) -> None:
        self._env = celpy.Environment(annotations={root: celtypes.MapType for root in roots})
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


def _plain(value: Any) -> Any:
    """celpy values back to plain Python values."""
    if value is None:
        return None
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
