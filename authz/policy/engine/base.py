"""The interface both CEL engines implement (imports nothing of theirs).

`cel-cpp` (cel-expr-python, Google's C++ runtime) is the default; `cel-python` (celpy, pure
Python) is the portable one. An engine compiles an expression once into a Program; per
request the service binds the attribute values once (`bind`) and evaluates many Programs
against that binding.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from authz.errors import EngineFailure

_log = logging.getLogger("authz.engine")


def engine_failure(engine: str, exc: BaseException) -> EngineFailure:
    """An exception the engine raised, as an EngineFailure: its text is logged here and
    never becomes a decision's message (a client or the decision log would read engine
    internals as the reason a rule failed)."""
    detail = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0][:500]
    _log.error("CEL engine %s failed: %s", engine, detail)
    return EngineFailure(detail)


class CompileFailure(Exception):
    """An engine refused an expression; line and col are 1-based inside the expression."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


class Program(Protocol):
    """A compiled expression."""

    def evaluate(self, bound: Any) -> Any:
        """Evaluate against a binding from Engine.bind; raises EvaluationError."""
        ...


class Engine(Protocol):
    """A CEL implementation."""

    name: str

    def compile(self, source: str) -> Program:
        """Parse and check an expression; raises CompileFailure."""
        ...

    def bind(self, variables: dict[str, Any]) -> Any:
        """Turn plain Python attribute values into this engine's activation."""
        ...


ENGINE_NAMES = ("cel-cpp", "cel-python")
