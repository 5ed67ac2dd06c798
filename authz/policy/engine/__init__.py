"""The two CEL engines behind one interface (base.py), shaped like httpx's transports:
`cpp.py` (cel-expr-python, Google's C++ runtime; the default) and `python.py` (celpy, pure
Python; the portable one). Both return the same plain values (values.py).

An engine compiles an expression once into a Program; per request the service binds the
attribute values once (`bind`) and evaluates many Programs against that binding.
"""

from __future__ import annotations

from authz.config.model import Limits
from authz.errors import EvaluationError
from authz.functions import FunctionLibrary
from authz.policy.engine.base import (
    ENGINE_NAMES,
    CompileFailure,
    Engine,
    Program,
    engine_failure,
)


def make_engine(name: str, roots: list[str], library: FunctionLibrary | None = None) -> Engine:
    """Build an engine by its config name (`cel-cpp` or `cel-python`) with the project's
    functions registered."""
    library = library or FunctionLibrary(Limits().max_scan_chars)
    if name == "cel-cpp":
        from authz.policy.engine.cpp import CppEngine

        return CppEngine(roots, library)
    if name == "cel-python":
        from authz.policy.engine.python import PyEngine

        return PyEngine(roots, library)
    raise ValueError(f"unknown engine {name!r} (choose one of: {', '.join(ENGINE_NAMES)})")


__all__ = [
    "ENGINE_NAMES",
    "CompileFailure",
    "Engine",
    "EvaluationError",
    "Program",
    "engine_failure",
    "make_engine",
]
