"""The request body as policies see it: text, parsed JSON (bounded), and why JSON is null."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from authz.config.model import Limits

BODY_FIELDS = ("text", "json", "truncated", "size", "content_type", "error")
LONE_SURROGATE = "body holds an unpaired UTF-16 surrogate"
# A JSON escape of a UTF-16 surrogate (D800-DFFF), in either case: only then can parsed
# text hold an unpaired one, so only then are the strings walked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Values a body may hold: past this, building the Python objects alone would cost more
# than a check's CPU budget (a 1 MB body of `0,` is 450,000 of them). Such a body is not
# parsed: body.json is null and body.error says why, so a policy reading it denies.
MAX_JSON_VALUES = 65536
# Bodies up to this size are bounded without numpy (most bodies with many brackets, e.g.
# chats with tool schemas, are smaller); past it numpy's passes are the cheaper ones.
SMALL_BODY = 65536
# A quote no odd run of backslashes escapes (the run goes with it when splitting).
_QUOTE = re.compile(rb'(?<!\\)(?:\\\\)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def _int(text: str) -> int | float:
    # Integers past int64 cannot be CEL ints; keep them as doubles instead of failing.
    if len(text) <= 18:
        return int(text)
    value = int(text) if len(text) <= 4000 else float(text)
    return value if -(2**63) <= value < 2**63 else float(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _bounds(raw: bytes, limit: int) -> str | None:
    """Why a JSON text is not to be parsed (more values than MAX_JSON_VALUES, containers
    nested deeper than `limit`), read from the text at C speed before anything is built:
    brackets and commas counted in the raw text (an upper bound: strings may hold some),
    and only when that is over a bound, again outside strings (quotes that no odd run of
    backslashes escapes open and close them), with nesting as a running sum over the
    brackets. No recursion, no walk over the value, no regular expression per string."""
    opens = raw.count(b"[") + raw.count(b"{")
    if opens + raw.count(b",") + 1 <= MAX_JSON_VALUES and opens <= limit:
        return None
    if len(raw) <= SMALL_BODY:
        return _bounds_small(raw, limit)
    return _bounds_large(raw, limit)


def _bounds_small(raw: bytes, limit: int) -> str | None:
    """_bounds_large's answer without numpy (~15 MiB a worker), for a body whose brackets a
    C-level running sum walks in a few ms: the text between unescaped quotes split off, the
    rest counted, nesting as the running maximum over its brackets."""
    parts = _QUOTE.split(raw) if b"\\" in raw else raw.split(b'"')
    outside = b"".join(parts[::2])
    opens = outside.count(b"[") + outside.count(b"{")
    if opens + outside.count(b",") + 1 > MAX_JSON_VALUES:
        return f"JSON of more than {MAX_JSON_VALUES} values; not parsed"
    if opens > limit:
        brackets = outside.translate(None, _NOT_BRACKETS)
        if max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit:
            return f"JSON nested deeper than {limit}"
    return None


def _bounds_large(raw: bytes, limit: int) -> str | None:
    """The same reading with numpy's vectorised passes, for bodies past SMALL_BODY."""
    import numpy as np  # only for a large body near a bound: numpy costs ~15 MiB a worker

    codes = np.frombuffer(raw, dtype=np.uint8)
    quote = codes == 34
    if b"\\" in raw:  # a quote after an odd run of backslashes is escaped
        slash = codes == 92
        index = np.arange(len(codes))
        last_other = np.maximum.accumulate(np.where(slash, -1, index))
        run = np.zeros(len(codes), dtype=np.int64)
        run[1:] = index[:-1] - last_other[:-1]  # backslashes right before each byte
        quote &= run % 2 == 0
    outside = np.cumsum(quote) % 2 == 0  # a closing quote counts as outside: harmless
    step = (codes == 91).astype(np.int32)  # [
    step += codes == 123  # {
    opens = int(np.count_nonzero(step.astype(bool) & outside))
    if opens + int(np.count_nonzero((codes == 44) & outside)) + 1 > MAX_JSON_VALUES:
        return f"JSON of more than {MAX_JSON_VALUES} values; not parsed"
    if opens > limit:
        step -= codes == 93  # ]
        step -= codes == 125  # }
        step *= outside
        if int(step.cumsum().max()) > limit:
            return f"JSON nested deeper than {limit}"
    return None


class _Duplicates:
    """An object_pairs_hook that builds dicts and remembers the first object holding a key
    twice (upstreams disagree on which value wins, so such a body has no one meaning)."""

    __slots__ = ("holder", "key")

    def __init__(self) -> None:
        self.key: str | None = None
        self.holder: dict[str, Any] | None = None

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        built = dict(pairs)
        if len(built) != len(pairs) and self.holder is None:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self.key = key
                    break
                seen.add(key)
            self.holder = built
        return built


def _short(key: str) -> str:
    return json.dumps(key if len(key) <= 64 else key[:64] + "...")


def _path_to(root: Any, target: Any) -> str:
    """The JSONPath of `target` (an object inside root, found by identity); iterative."""
    stack: list[tuple[Any, str]] = [(root, "$")]
    while stack:
        item, path = stack.pop()
        if item is target:
            return path
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(child, dict | list):
                    step = f".{key}" if _NAME.match(key) and len(key) <= 64 else f"[{_short(key)}]"
                    stack.append((child, path + step))
        elif isinstance(item, list):
            stack.extend(
                (c, f"{path}[{i}]") for i, c in enumerate(item) if isinstance(c, dict | list)
            )
    return "$"


def holds_lone_surrogate(value: Any) -> bool:
    """True when a string (or a map key) anywhere in value holds an unpaired UTF-16
    surrogate: not a character, so not valid UTF-8, and the C++ engine cannot take it.
    Iterative: no recursion on hostile input."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATES.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@dataclass(frozen=True)
class ParsedJson:
    """The outcome of parsing: a value, or None with the reason."""

    value: Any
    error: str | None


def parse_json(raw: bytes, limits: Limits) -> ParsedJson:
    """Parse a body as JSON within the configured size and depth; never raises."""
    if not raw:
        return ParsedJson(None, "empty body")
    if len(raw) > limits.max_body_bytes:
        return ParsedJson(
            None,
            f"body of {len(raw)} bytes exceeds max_body_bytes "
            f"({limits.max_body_bytes}); not parsed",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParsedJson(None, f"body is not valid UTF-8 (byte {exc.start})")
    refused = _bounds(raw, limits.max_json_depth)
    if refused is not None:
        return ParsedJson(None, refused)
    duplicates = _Duplicates()
    try:
        value = json.loads(
            text, parse_int=_int, parse_constant=_no_constant, object_pairs_hook=duplicates
        )
    except RecursionError:
        return ParsedJson(None, f"JSON nested deeper than {limits.max_json_depth}")
    except json.JSONDecodeError as exc:
        return ParsedJson(None, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    except ValueError as exc:
        return ParsedJson(None, f"invalid JSON: {exc}")
    if duplicates.key is not None:
        where = _path_to(value, duplicates.holder)
        return ParsedJson(None, f"duplicate key {_short(duplicates.key)} at {where}")
    if _SURROGATE_ESCAPE.search(raw) and holds_lone_surrogate(value):
        return ParsedJson(None, LONE_SURROGATE)
    return ParsedJson(value, None)


@dataclass(frozen=True)
class BodyView:
    """The body Envoy forwarded; text and JSON are computed only when a policy reads them."""

    raw: bytes
    content_type: str
    truncated: bool
    limits: Limits

    @cached_property
    def text(self) -> str:
        """The body decoded as UTF-8, invalid bytes replaced."""
        return self.raw.decode("utf-8", errors="replace")

    @property
    def maybe_lone_surrogate(self) -> bool:
        """The raw body holds a JSON surrogate escape (cheap; parsing tells whether it is
        unpaired)."""
        return _SURROGATE_ESCAPE.search(self.raw) is not None

    @cached_property
    def parsed(self) -> ParsedJson:
        """The body parsed as JSON, once."""
        return parse_json(self.raw, self.limits)

    def as_cel(self, fields: set[str] | None) -> dict[str, Any]:
        """The `body` attribute with the requested fields (None: all of them)."""
        wanted = set(BODY_FIELDS) if fields is None else fields
        out: dict[str, Any] = {}
        if "text" in wanted:
            out["text"] = self.text
        if "json" in wanted:
            out["json"] = self.parsed.value
        if "error" in wanted:
            out["error"] = self.parsed.error if self.raw else None
        if "truncated" in wanted:
            out["truncated"] = self.truncated
        if "size" in wanted:
            out["size"] = len(self.raw)
        if "content_type" in wanted:
            out["content_type"] = self.content_type
        return out
