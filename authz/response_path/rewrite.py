"""Redaction of a response: every text leaf through redact(), the rest byte for byte.

A JSON body is rewritten in place: each string value (never a key) whose text holds a
secret or a piece of personal data is replaced by its redacted JSON string, and everything
else (numbers, spacing, key order) is left exactly as the upstream wrote it, so the body
stays the JSON it was. Other text is redacted whole. A body that is not UTF-8 cannot be
redacted (None): the caller withholds it instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

from authz.detectors import redact

# In valid JSON no quote appears outside a string, so scanning from the start meets every
# string token in order; one followed by ':' is a key.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_COLON = re.compile(r"\s*:")


def redact_json_text(text: str) -> str:
    """Valid JSON text with every string value passed through redact()."""
    out: list[str] = []
    position = 0
    for token in _STRING.finditer(text):
        if _COLON.match(text, token.end()):
            continue
        value = json.loads(token.group())
        cleaned = redact(value)
        if cleaned != value:
            out.append(text[position : token.start()])
            out.append(json.dumps(cleaned, ensure_ascii=False))
            position = token.end()
    if not out:
        return text
    out.append(text[position:])
    return "".join(out)


def redact_value(value: Any) -> Any:
    """A parsed JSON value with every string value passed through redact()."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value


def redact_body(raw: bytes, is_json: bool) -> bytes | None:
    """The body with its text redacted; None when it is not UTF-8 text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    cleaned = redact_json_text(text) if is_json else redact(text)
    return raw if cleaned == text else cleaned.encode("utf-8")
