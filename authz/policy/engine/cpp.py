"""The default engine: cel-expr-python, Google's C++ CEL runtime (as in Envoy's RBAC filter)."""

from __future__ import annotations

import re
from typing import Any

from cel_expr_python import cel

from authz.errors import EvaluationError
from authz.functions import REQUEST_HANDLE, CelFunction, FunctionLibrary
from authz.policy.engine.base import CompileFailure, engine_failure
from authz.policy.engine.values import TYPE_NAMES, sorted_map

_ERROR = re.compile(r"<input>:(\d+):(\d+): ([^\n]*)")


# The runtime dispatches on concrete argument types, so each function gets one overload per
# kind of value it accepts (a DYN parameter alone matches nothing at run time).
_ARGUMENTS = {
    "string": cel.Type.STRING,
    "map": cel.Type.Map(cel.Type.DYN, cel.Type.DYN),
    "list": cel.Type.List(cel.Type.DYN),
    "null": cel.Type.NULL,
}
_RESULTS = {
    "list": cel.Type.List(cel.Type.STRING),
    "string": cel.Type.STRING,
    "double": cel.Type.DOUBLE,
}


def _declare(function: CelFunction, library: FunctionLibrary) -> Any:
    """`f(value)` as the shared checker types it (the source compiles first as written),
    and `f(value, handle)`, the call the compiler leaves in (it names the request's memo);
    only the second runs: the first has no request and fails (library.bound)."""
    impl = library.bound(function)
    overloads = [
        cel.Overload(
            f"{function.name}_{kind}{suffix}",
            return_type=_RESULTS[function.returns],
            parameters=[argument, *extra],
            impl=impl,
        )
        for kind, argument in _ARGUMENTS.items()
        for suffix, extra in (("", []), ("_req", [cel.Type.INT]))
    ]
    return cel.FunctionDecl(function.name, overloads)


_RANGE_REFUSED = "cannot be the range of a comprehension"
_MACROS = ("all", "exists", "exists_one", "map", "filter")


def _dyn_ranges(source: str) -> str:
    """`a["k"].exists(x, ...)` as `dyn(a["k"]).exists(x, ...)`: every macro range that is an
    index expression wrapped in dyn()."""
    from authz.policy.references import parse

    spans = []
    for node in parse(source).iter_subtrees():
        if node.data != "member_dot_arg" or str(node.children[1]) not in _MACROS:
            continue
        target = node.children[0]
        while len(target.children) == 1 and target.children[0].data == "member":
            target = target.children[0]
        inner = target.children[0] if len(target.children) == 1 else target
        if getattr(inner, "data", "") == "member_index":
            spans.append((target.meta.start_pos, target.meta.end_pos))
    for start, end in sorted(spans, reverse=True):
        source = f"{source[:start]}dyn({source[start:end]}){source[end:]}"
    return source


class CppProgram:
    """An expression compiled by the C++ runtime."""

    __slots__ = ("_expr",)

    def __init__(self, expr: Any) -> None:
        self._expr = expr

    def evaluate(self, bound: Any) -> Any:
        """Evaluate; an error value from the runtime becomes EvaluationError."""
        try:
            value = self._expr.eval(bound)
        except Exception as exc:  # conversion failures surface as Python exceptions
            raise engine_failure("cel-cpp", exc) from None
        if value.type() == cel.Type.ERROR:
            raise EvaluationError(str(value.value()))
        return _plain(value.plain_value())


_SCALARS = frozenset({bool, int, float, str, type(None)})


def _plain(value: Any) -> Any:
    """The runtime's plain value in the shape values.py describes: bytes rather than
    bytearray, maps in one key order (the runtime's own order is hashed per process), a type
    by its CEL name. Scalars, the usual result, pass untouched."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is bytearray:
        return bytes(value)
    if kind is list:
        return [_plain(v) for v in value]
    if kind is dict:
        return sorted_map({_plain(k): _plain(v) for k, v in value.items()})
    if kind is cel.Type:
        name = value.name().split("<", 1)[0].lower()
        return TYPE_NAMES.get(name, name)
    return value  # datetime (UTC), timedelta


class CppEngine:
    """Compiles against the declared attribute roots, each a map of string to dyn."""

    name = "cel-cpp"

    def __init__(self, roots: list[str], library: FunctionLibrary) -> None:
        dyn_map = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
        self._env = cel.NewEnv(
            variables={**{root: dyn_map for root in roots}, REQUEST_HANDLE: cel.Type.INT},
            functions=[_declare(f, library) for f in library.functions],
        )

    def compile(self, source: str) -> CppProgram:
        """Parse and type-check; the first reported error carries the position."""
        try:
            try:
                return CppProgram(self._env.compile(source))
            except RuntimeError as exc:
                if _RANGE_REFUSED not in str(exc):
                    raise
                # The shared checker has typed the expression already; this runtime's own
                # checker refuses an index into a dyn value as a macro's range, and accepts
                # the same range as dyn(...).
                return CppProgram(self._env.compile(_dyn_ranges(source)))
        except RuntimeError as exc:
            match = _ERROR.search(str(exc))
            if match is None:
                raise CompileFailure(str(exc).splitlines()[0]) from None
            line, col, message = int(match[1]), int(match[2]), match[3]
            raise CompileFailure(message, line, col) from None

    def bind(self, variables: dict[str, Any]) -> Any:
        """One activation per request, shared by every expression evaluated for it."""
        try:
            return self._env.Activation(variables)
        except Exception as exc:
            raise engine_failure("cel-cpp", exc) from None
