"""The project's own CEL functions, the same on both engines: secrets(), pii(), injection(),
injection_score(), redact(), and injection_model() when the config loads a model.

Each takes a string, or any map or list (its string leaves are scanned), and looks at most
`max_scan_chars` characters. Results are memoised per request, so a function called from
several rules on the same text runs once; and since they are ordinary CEL calls, none runs
unless a loaded expression calls it. injection_model() is deferred: it scores on the model's
own pool (detectors/classifier.py), which `submit` starts and the caller waits for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authz import detectors
from authz.detectors import prescan
from authz.detectors.classifier import InjectionModel, Scoring
from authz.errors import CheckTimeout

MAX_LEAVES = 10_000
# Functions that exist only when the config says how to compute them.
NEEDS_CONFIG = {
    "injection_model": "injection_model() needs a model: add `detectors: {injection_model:"
    " {onnx: PATH, tokenizer: PATH}}` to the config (README: a model you bring)",
}


@dataclass(frozen=True)
class CelFunction:
    """A function callable from CEL: its name, result kind ("list", "string" or "double")
    and body."""

    name: str
    returns: str
    impl: Callable[..., Any]
    prescanned: bool = False  # impl(text, hits): given what prescan.scan(text) found
    reads_signals: bool = False  # impl(text, signals): given injection()'s on the same text


def _text(value: Any, limit: int) -> str:
    """The text a function scans: a string itself, or the string leaves of a map or list."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, bytes):
        return value[:limit].decode("utf-8", errors="replace")
    parts: list[str] = []
    size = 0
    stack = [value]
    seen = 0
    while stack and size < limit and seen < MAX_LEAVES:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            parts.append(item)
            size += len(item) + 1
        elif isinstance(item, dict):
            stack.extend(reversed([v for pair in item.items() for v in pair]))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif isinstance(item, bytes):
            parts.append(item.decode("utf-8", errors="replace"))
            size += len(item) + 1
    return "\n".join(parts)[:limit]


class FunctionLibrary:
    """The functions for one loaded config, with a per-request (per-thread) memo."""

    def __init__(self, max_scan_chars: int, model: InjectionModel | None = None) -> None:
        self.max_scan_chars = max_scan_chars
        self._local = threading.local()
        self.functions: tuple[CelFunction, ...] = (
            CelFunction("secrets", "list", detectors.secret_kinds, prescanned=True),
            CelFunction("pii", "list", detectors.pii_kinds, prescanned=True),
            CelFunction("injection", "list", detectors.injection_signals, prescanned=True),
            CelFunction("redact", "string", detectors.redact),
            CelFunction("injection_score", "double", detectors.injection_score, reads_signals=True),
        )
        self.model = model
        if model is not None:
            self.functions += (CelFunction("injection_model", "double", model.score),)
        # deferred: scored off the caller's thread; unconfigured: name -> why it is refused
        self.deferred = frozenset({"injection_model"} if model is not None else ())
        self.unconfigured = {n: why for n, why in NEEDS_CONFIG.items() if n not in self.deferred}
        self.names = frozenset(f.name for f in self.functions)
        self._bound = {f.name: self.bound(f) for f in self.functions}
        self.runs = 0  # how many times a detector actually ran (for tests and metrics)

    def begin_request(self) -> None:
        """Forget the previous request's results (called once per Check, on its thread)."""
        self._local.memo = {}

    def set_deadline(self, deadline: float | None) -> None:
        """The check on this thread stops before its next detector call past `deadline`
        (a time.perf_counter() value; None: no budget), raising CheckTimeout."""
        self._local.deadline = deadline

    def _in_time(self, name: str) -> None:
        deadline = getattr(self._local, "deadline", None)
        if deadline is not None and time.perf_counter() > deadline:
            raise CheckTimeout(f"check time budget spent before {name}()")

    def call(self, name: str, value: Any) -> Any:
        """Run function `name` on a value (memoised like a call from CEL)."""
        return self._bound[name](value)

    def submit(self, name: str, value: Any) -> Scoring:
        """Start deferred function `name` (injection_model) on a value, off this thread,
        memoised like `call`; the caller waits on the Scoring, then reads its result."""
        if self.model is None or name not in self.deferred:
            raise ValueError(f"{name} is not a deferred function")
        self._in_time(name)
        text = _text(value, self.max_scan_chars)
        memo = self._memo()
        key = (name, text)
        if key in memo:
            return Scoring.of(memo[key])
        self.runs += 1
        scoring = self.model.submit(text)

        def remember(future: Any) -> None:
            if not future.cancelled() and future.exception() is None:
                memo[key] = future.result()

        scoring.future.add_done_callback(remember)
        return scoring

    def _memo(self) -> dict[tuple[str, str], Any]:
        memo = getattr(self._local, "memo", None)
        if memo is None:
            memo = self._local.memo = {}
        return memo

    def request_runs(self) -> int:
        """How many scans the current request ran (its memo's size, less the prescans)."""
        return sum(1 for name, _ in getattr(self._local, "memo", {}) if name)

    def bound(self, function: CelFunction) -> Callable[[Any], Any]:
        """The Python callable an engine registers for `function`."""

        def call(value: Any) -> Any:
            text = _text(value, self.max_scan_chars)
            memo = self._memo()
            key = (function.name, text)
            if key not in memo:
                self._in_time(function.name)
                self.runs += 1
                if function.prescanned:  # one pass for every detector on the same text
                    hits = memo.get(("", text))
                    if hits is None:
                        hits = memo[("", text)] = prescan.scan(text)
                    memo[key] = function.impl(text, hits)
                elif function.reads_signals:  # judged on injection()'s signals: computed once
                    memo[key] = function.impl(text, self._bound["injection"](value))
                else:
                    memo[key] = function.impl(text)
            return memo[key]

        return call
