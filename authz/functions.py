"""The project's own CEL functions, the same on both engines: secrets(), pii(), injection(),
injection_score(), redact(), and injection_model() when the config loads a model.

Each takes a string, or any map or list (its string leaves are scanned), and looks at most
`max_scan_chars` characters. Results are memoised per request, so a function called from
several rules on the same text runs once; and since they are ordinary CEL calls, none runs
unless a loaded expression calls it. injection_model() is deferred: it scores on the model's
own pool (detectors/classifier.py), which `submit` starts and the caller waits for.

The memo and the deadline belong to one request (a DetectorMemo, held by its context) and are
passed explicitly. The engines register the functions once per config, so a call left in an
expression (one on a computed argument; calls on attribute paths are precomputed) names its
request through a second argument the compiler adds, `REQUEST_HANDLE`, an int bound in that
request's activation: the function finds the memo by it, and with no live memo it fails.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authz import detectors
from authz.detectors import prescan
from authz.detectors.classifier import InjectionModel, Scoring
from authz.errors import CheckTimeout, EvaluationError

MAX_LEAVES = 10_000
REQUEST_HANDLE = "_req"  # the activation variable naming the request's DetectorMemo
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


class DetectorMemo:
    """One request's detector state: results by (function, text) (prescans under ""), and
    the deadline past which no detector starts (a time.perf_counter() value; None: none)."""

    __slots__ = ("__weakref__", "deadline", "handle", "results", "timed_out")

    def __init__(self, deadline: float | None = None) -> None:
        self.results: dict[tuple[str, str], Any] = {}
        self.deadline = deadline
        self.handle: int | None = None  # set when an activation names this memo
        # Set when the deadline stopped a call made from inside CEL, where the engine turns
        # the CheckTimeout into an evaluation error: decide reads it to deny as a timeout.
        self.timed_out: str | None = None

    def scans(self) -> int:
        """How many scans this request ran (its results, less the prescans)."""
        return sum(1 for name, _ in self.results if name)

    def in_time(self, name: str) -> None:
        """Raise CheckTimeout when the deadline is past, before running `name`."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.timed_out = f"check time budget spent before {name}()"
            raise CheckTimeout(self.timed_out)


class FunctionLibrary:
    """The functions for one loaded config; the per-request state is a DetectorMemo."""

    def __init__(self, max_scan_chars: int, model: InjectionModel | None = None) -> None:
        self.max_scan_chars = max_scan_chars
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
        self.by_name = {f.name: f for f in self.functions}
        self.runs = 0  # how many times a detector actually ran (for tests and metrics)
        # Memos an activation names, by handle; an entry goes with its request's memo.
        self._live: weakref.WeakValueDictionary[int, DetectorMemo] = weakref.WeakValueDictionary()
        self._handles = itertools.count(1)

    def preload(self, called: frozenset[str]) -> None:
        """Load what the functions a config calls need before the first request: the
        score's model and numpy take 50-100 ms to load, which a request's budget should
        not pay (a config that never calls injection_score never loads them)."""
        if "injection_score" in called:
            from authz.detectors.score import shipped_model

            shipped_model()

    def handle(self, memo: DetectorMemo) -> int:
        """The int an activation binds as REQUEST_HANDLE so a call from CEL finds `memo`."""
        if memo.handle is None:
            memo.handle = next(self._handles)
            self._live[memo.handle] = memo
        return memo.handle

    def call(self, memo: DetectorMemo, name: str, value: Any) -> Any:
        """Run function `name` on a value, memoised in `memo`."""
        function = self.by_name[name]
        text = _text(value, self.max_scan_chars)
        results = memo.results
        key = (name, text)
        if key not in results:
            memo.in_time(name)
            self.runs += 1
            if function.prescanned:  # one pass for every detector on the same text
                hits = results.get(("", text))
                if hits is None:
                    hits = results[("", text)] = prescan.scan(text)
                results[key] = function.impl(text, hits)
            elif function.reads_signals:  # judged on injection()'s signals: computed once
                results[key] = function.impl(text, self.call(memo, "injection", value))
            else:
                results[key] = function.impl(text)
        return results[key]

    def submit(self, memo: DetectorMemo, name: str, value: Any) -> Scoring:
        """Start deferred function `name` (injection_model) on a value, off this thread,
        memoised like `call`; the caller waits on the Scoring, then reads its result."""
        if self.model is None or name not in self.deferred:
            raise ValueError(f"{name} is not a deferred function")
        memo.in_time(name)
        text = _text(value, self.max_scan_chars)
        results = memo.results
        key = (name, text)
        if key in results:
            return Scoring.of(results[key])
        self.runs += 1
        scoring = self.model.submit(text)

        def remember(future: Any) -> None:
            if not future.cancelled() and future.exception() is None:
                results[key] = future.result()

        scoring.future.add_done_callback(remember)
        return scoring

    def bound(self, function: CelFunction) -> Callable[[Any, Any], Any]:
        """The Python callable an engine registers for `function`: (value, request handle)."""
        name = function.name

        def call(value: Any, handle: Any = None) -> Any:
            memo = self._live.get(handle) if type(handle) is int else None
            if memo is None:  # fail closed: a call outside a request has no memo or deadline
                raise EvaluationError(f"{name}() called outside a request")
            return self.call(memo, name, value)

        return call
