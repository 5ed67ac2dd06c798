"""Text the model reads in an LLM request: content parts flattened (nested, bounded),
documents and base64 text files decoded, call arguments and JSON values as text."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import unquote

from authz.llm.view import MAX_MESSAGES, MAX_TEXT_CHARS, LlmView

MAX_PART_DEPTH = 8
# Base64 characters decoded from one file: enough for MAX_TEXT_CHARS bytes of text.
MAX_BASE64_CHARS = (MAX_TEXT_CHARS // 3 + 1) * 4

_NOISE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
_TEXT_KEYS = ("text", "input_text", "output_text", "content", "output", "refusal", "thinking")


def text_of(content: Any, view: LlmView, where: str = "content", depth: int = 0) -> str:
    """Text in a content value: a string, a part, or a list of parts (nested, bounded)."""
    if isinstance(content, str):
        return content[:MAX_TEXT_CHARS]
    if depth >= MAX_PART_DEPTH:
        view.note(f"{where}: content parts nested deeper than {MAX_PART_DEPTH}")
        return ""
    if isinstance(content, list):
        texts = [
            text_of(part, view, f"{where}[{i}]", depth + 1)
            for i, part in enumerate(content[:MAX_MESSAGES])
        ]
        if len(content) > MAX_MESSAGES:
            view.note(f"{where}: more than {MAX_MESSAGES} content parts")
        return "\n".join(t for t in texts if t)
    if isinstance(content, dict):
        return _part_text(content, view, where, depth)
    if content is not None:
        view.note(f"{where}: content of an unexpected type was skipped")
    return ""


def _part_text(part: dict[str, Any], view: LlmView, where: str, depth: int) -> str:
    kind = part.get("type")
    if kind == "document":  # Anthropic
        return _document_text(part, view, where, depth)
    if kind == "input_file":  # OpenAI Responses
        return file_text(view, part.get("file_data"), f"{where}.file_data")
    if kind == "file" and isinstance(part.get("file"), dict):  # OpenAI chat
        return file_text(view, part["file"].get("file_data"), f"{where}.file.file_data")
    if kind == "search_result":  # Anthropic
        return join(
            text_of(part.get("title"), view, where, depth + 1),
            text_of(part.get("content"), view, where, depth + 1),
        )
    for key in _TEXT_KEYS:
        if key in part:
            return text_of(part[key], view, where, depth + 1)
    return ""


def _document_text(part: dict[str, Any], view: LlmView, where: str, depth: int) -> str:
    """An Anthropic document block: title, context and a text, content or base64 source."""
    source = part.get("source")
    body = ""
    if isinstance(source, dict):
        kind = source.get("type")
        if kind == "text":
            body = text_of(source.get("data"), view, f"{where}.source.data", depth + 1)
        elif kind == "content":
            body = text_of(source.get("content"), view, f"{where}.source.content", depth + 1)
        elif kind == "base64":
            body = file_text(view, source.get("data"), f"{where}.source.data")
    return join(
        text_of(part.get("title"), view, f"{where}.title", depth + 1),
        text_of(part.get("context"), view, f"{where}.context", depth + 1),
        body,
    )


def file_text(view: LlmView, data: Any, where: str) -> str:
    """The text of a base64 file the model reads (a data: URL or bare base64), decoded up
    to MAX_TEXT_CHARS bytes; "" for a binary file (PDF, image). The bytes decide, not the
    media type the sender claims (a text file may be labelled application/octet-stream)."""
    if data is None:
        return ""
    if not isinstance(data, str):
        view.note(f"{where}: not a string")
        return ""
    payload = data
    if data[:5].lower() == "data:":
        header, comma, payload = data.partition(",")
        if not comma:
            view.note(f"{where}: a data URL without a comma")
            return ""
        if not header.lower().endswith(";base64"):
            return _readable(unquote(payload))
    cut = payload[: MAX_BASE64_CHARS + 4096]
    truncated = len(cut) < len(payload)
    payload = "".join(cut.split())
    truncated = truncated or len(payload) > MAX_BASE64_CHARS
    if truncated:
        payload = payload[:MAX_BASE64_CHARS]
        view.note(f"{where}: longer than {MAX_TEXT_CHARS} bytes; the rest is not in the view")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        view.note(f"{where}: not valid base64")
        return ""
    return _readable(_decode_text(raw) or "")


def _readable(text: str) -> str:
    # The C++ engine cuts strings at NUL: keep what follows one readable.
    return text.replace("\0", "\ufffd")[:MAX_TEXT_CHARS]


def _decode_text(raw: bytes) -> str | None:
    """UTF-8 (or UTF-16 with a byte order mark) text, None when the bytes are not text.
    A few bad bytes do not make a text file binary (they would hide what follows them):
    binary is more than one character in 16 undecodable or a control character."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = raw.decode("utf-16", errors="replace")
    else:
        text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
    noise = len(text) - len(_NOISE.sub("", text))
    return None if noise * 16 > len(text) else text


def json_text(value: Any) -> str:
    """JSON text of a value (arguments, a function response); "" for none."""
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False)[:MAX_TEXT_CHARS]
    except (TypeError, ValueError, RecursionError):
        return ""


def join(*texts: str) -> str:
    """The texts that are not empty, one a line."""
    return "\n".join(t for t in texts if t)


def arguments_text(view: LlmView, value: Any, where: str) -> str:
    """Call arguments as the model produced them: a string as sent, else its JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:MAX_TEXT_CHARS]
    view.note(f"{where}: not a string")
    return json_text(value)
