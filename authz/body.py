"""The request body as policies see it: text, parsed JSON (bounded), and why JSON is null."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from authz.policy.model import Limits

BODY_FIELDS = ("text", "json", "truncated", "size", "content_type", "error")


def _int(text: str) -> int | float:
    # Integers past int64 cannot be CEL ints; keep them as doubles instead of failing.
    if len(text) <= 18:
        return int(text)
    value = int(text) if len(text) <= 4000 else float(text)
    return value if -(2**63) <= value < 2**63 else float(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than limit (iterative: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
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
    try:
        value = json.loads(text, parse_int=_int, parse_constant=_no_constant)
    except RecursionError:
        return ParsedJson(None, f"JSON nested deeper than {limits.max_json_depth}")
    except json.JSONDecodeError as exc:
        return ParsedJson(None, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    except ValueError as exc:
        return ParsedJson(None, f"invalid JSON: {exc}")
    if _depth_exceeds(value, limits.max_json_depth):
        return ParsedJson(None, f"JSON nested deeper than {limits.max_json_depth}")
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
