"""Errors a user can cause, one leaf per kind of failure.

    AuthzError
    ├── ConfigError        the policy file is unreadable or wrong (one or more ConfigIssue)
    ├── RequestError       an offline request file (`authz check --request`) is malformed
    ├── NoTests            a path given to `authz test` holds no test case
    ├── TokenError         `authz token` cannot mint (unreadable key, malformed --claim)
    ├── EvaluationError    a CEL expression failed at run time (ends in a deny)
    │   └── EngineFailure  the engine itself raised; fixed message, detail logged only
    └── CheckTimeout       a check ran past its time budget (ends in a deny)

Each carries a one-line message that says what and where; tracebacks are for bugs.
"""

from __future__ import annotations

from dataclasses import dataclass


class AuthzError(Exception):
    """Root of every error this package raises on purpose."""


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem in a config file, at a 1-based line and column."""

    file: str
    line: int
    col: int
    message: str
    snippet: str = ""

    def __str__(self) -> str:
        head = f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{head}\n{self.snippet}" if self.snippet else head


class ConfigError(AuthzError):
    """A config that cannot be loaded; holds every issue found, sorted by position."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class RequestError(AuthzError):
    """A request description (for `authz check`) that cannot be turned into a CheckRequest."""


class NoTests(AuthzError):
    """A path given to `authz test` holds no test case (a suite that tests nothing fails)."""


class TokenError(AuthzError):
    """`authz token` cannot mint a token (an unreadable key, a malformed claim)."""


class EvaluationError(AuthzError):
    """A CEL expression that failed while evaluating a request."""


class EngineFailure(EvaluationError):
    """The CEL engine raised instead of returning a CEL error (a value it could not take, a
    bug of its own). Its text describes the engine, not the request: the message is fixed,
    and `detail` goes to the service log only, never into a decision or to a client."""

    MESSAGE = "internal engine failure (detail in the service log)"

    def __init__(self, detail: str) -> None:
        super().__init__(self.MESSAGE)
        self.detail = detail


class CheckTimeout(AuthzError):
    """A check still running past its time budget (`serve --check-budget-ms`): it stops at
    the next stage boundary or detector call and ends in a deny."""
