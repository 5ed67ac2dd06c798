"""The `response` attribute: what the upstream answered, as response rules read it.

`response.status` and `response.headers` come from the response headers; `response.body`
from the body Envoy buffered; `response.llm` is the completion in whichever dialect the body
speaks (OpenAI chat, completions and responses, Anthropic messages, Gemini), recognised by
its shape; `response.mcp` is a JSON-RPC answer (an MCP tool result, a resource, a prompt).
A field that is not there is empty (`""`, `[]`, `false`) or null, never guessed. In a stream
(sse.py) each event is judged with the text of a bounded window; see there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from authz.body import ParsedJson, parse_json
from authz.celtypes import (
    BOOL,
    DYN,
    INT,
    STRING,
    list_of,
    map_of,
    nullable,
    record,
)
from authz.config.model import Limits

TOOL_CALL = record("response tool call", name=STRING, arguments=STRING)
USAGE = record("response usage", input_tokens=nullable(INT), output_tokens=nullable(INT))
LLM = record(
    "response llm",
    text=STRING,
    finish_reason=STRING,
    tool_calls=list_of(TOOL_CALL),
    usage=USAGE,
)
MCP = record("response mcp", text=STRING, is_error=BOOL, structured=nullable(DYN))
BODY = record("response body", text=STRING, json=nullable(DYN), size=INT, truncated=BOOL)
TYPE = record(
    "response",
    status=INT,
    headers=map_of(STRING, STRING),
    body=BODY,
    llm=LLM,
    mcp=MCP,
)
FIELDS = TYPE.field_names

MAX_TOOL_CALLS = 128
MAX_ARGUMENT_CHARS = 1 << 16


def media_type(headers: dict[str, str]) -> str:
    """The content-type without parameters, lower-case."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


def declares_json(content_type: str) -> bool:
    """`application/json` and the `+json` family: a body that must parse as JSON."""
    return content_type == "application/json" or content_type.endswith("+json")


def is_event_stream(content_type: str) -> bool:
    """Server-sent events."""
    return content_type == "text/event-stream"


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -(2**63) <= value < 2**63 else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


@dataclass
class Completion:
    """The `response.llm` value, accumulated (a stream adds to it event by event)."""

    texts: list[str] = field(default_factory=list)
    finish_reason: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None

    def add_call(self, name: str, arguments: str) -> None:
        """A tool call the model made (bounded in number and size)."""
        if len(self.tool_calls) < MAX_TOOL_CALLS:
            self.tool_calls.append({"name": name, "arguments": arguments[:MAX_ARGUMENT_CHARS]})

    def usage(self, input_tokens: Any, output_tokens: Any) -> None:
        """Token counts, when the body states them (a later statement wins)."""
        if _int(input_tokens) is not None:
            self.input_tokens = _int(input_tokens)
        if _int(output_tokens) is not None:
            self.output_tokens = _int(output_tokens)

    def as_cel(self, text: str | None = None) -> dict[str, Any]:
        """The CEL value; `text` replaces the joined texts (a stream's window)."""
        return {
            "text": "\n".join(self.texts) if text is None else text,
            "finish_reason": self.finish_reason,
            "tool_calls": list(self.tool_calls),
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
        }


EMPTY_LLM = Completion().as_cel()
EMPTY_MCP: dict[str, Any] = {"text": "", "is_error": False, "structured": None}


def _parts_text(parts: Any) -> str:
    """OpenAI content: a string, or a list of parts with `text` (or `refusal`)."""
    if isinstance(parts, str):
        return parts
    return "".join(_str(p.get("text")) or _str(p.get("refusal")) for p in _dicts(parts))


def _openai_choices(body: dict[str, Any], done: Completion) -> None:
    for choice in _dicts(body.get("choices")):
        message = choice.get("message") if isinstance(choice.get("message"), dict) else None
        if message is not None:
            text = _parts_text(message.get("content")) or _str(message.get("refusal"))
            for call in _dicts(message.get("tool_calls")):
                function = call.get("function") if isinstance(call.get("function"), dict) else {}
                done.add_call(_str(function.get("name")), _str(function.get("arguments")))
        else:
            text = _str(choice.get("text"))  # the legacy completions API
        if text:
            done.texts.append(text)
        done.finish_reason = _str(choice.get("finish_reason")) or done.finish_reason
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    done.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))


def _openai_response(body: dict[str, Any], done: Completion) -> None:
    """The Responses API: `output` items (messages with output_text, function calls)."""
    for item in _dicts(body.get("output")):
        kind = item.get("type")
        if kind == "message":
            text = "".join(
                _str(p.get("text")) or _str(p.get("refusal")) for p in _dicts(item.get("content"))
            )
            if text:
                done.texts.append(text)
        elif kind == "function_call":
            done.add_call(_str(item.get("name")), _str(item.get("arguments")))
    details = body.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    done.finish_reason = _str(reason) or _str(body.get("status"))
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    done.usage(usage.get("input_tokens"), usage.get("output_tokens"))


def _anthropic(body: dict[str, Any], done: Completion) -> None:
    for block in _dicts(body.get("content")):
        if block.get("type") == "text" and _str(block.get("text")):
            done.texts.append(block["text"])
        elif block.get("type") == "tool_use":
            done.add_call(_str(block.get("name")), json.dumps(block.get("input", {})))
    done.finish_reason = _str(body.get("stop_reason"))
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    done.usage(usage.get("input_tokens"), usage.get("output_tokens"))


def gemini_candidates(body: dict[str, Any], done: Completion) -> None:
    """Gemini's `candidates` (a whole answer, or one streamed chunk of it)."""
    for candidate in _dicts(body.get("candidates")):
        content = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
        texts = []
        for part in _dicts(content.get("parts")):
            if _str(part.get("text")):
                texts.append(part["text"])
            call = part.get("functionCall")
            if isinstance(call, dict):
                done.add_call(_str(call.get("name")), json.dumps(call.get("args", {})))
        if texts:
            done.texts.append("".join(texts))
        done.finish_reason = _str(candidate.get("finishReason")) or done.finish_reason
    usage = body.get("usageMetadata") if isinstance(body.get("usageMetadata"), dict) else {}
    done.usage(usage.get("promptTokenCount"), usage.get("candidatesTokenCount"))


def completion_of(body: Any) -> Completion | None:
    """The completion in a whole response body, by its shape; None when it is not one."""
    if not isinstance(body, dict):
        return None
    done = Completion()
    if isinstance(body.get("choices"), list):
        _openai_choices(body, done)
    elif body.get("object") == "response" and isinstance(body.get("output"), list):
        _openai_response(body, done)
    elif body.get("type") == "message" and isinstance(body.get("content"), list):
        _anthropic(body, done)
    elif isinstance(body.get("candidates"), list):
        gemini_candidates(body, done)
    else:
        return None
    return done


def _content_text(items: Any) -> list[str]:
    """Text of MCP content items: text, embedded resources, and resource contents."""
    texts = []
    for item in _dicts(items):
        if _str(item.get("text")):
            texts.append(item["text"])
        resource = item.get("resource")
        if isinstance(resource, dict) and _str(resource.get("text")):
            texts.append(resource["text"])
    return texts


def _rpc_answer(message: dict[str, Any]) -> tuple[list[str], bool, Any] | None:
    if message.get("jsonrpc") != "2.0" or not ("result" in message or "error" in message):
        return None
    error = message.get("error")
    if isinstance(error, dict):
        texts = [_str(error.get("message"))]
        if isinstance(error.get("data"), str):
            texts.append(error["data"])
        return [t for t in texts if t], True, None
    result = message.get("result")
    if not isinstance(result, dict):
        return [], False, None
    texts = _content_text(result.get("content")) + _content_text(result.get("contents"))
    for prompt_message in _dicts(result.get("messages")):  # prompts/get
        texts += _content_text([prompt_message.get("content")])
    return texts, result.get("isError") is True, result.get("structuredContent")


def mcp_of(body: Any) -> dict[str, Any] | None:
    """`response.mcp` for a JSON-RPC answer (or a batch of them); None when it is not one."""
    messages = body if isinstance(body, list) else [body]
    answers = [a for m in _dicts(messages) if (a := _rpc_answer(m)) is not None]
    if not answers:
        return None
    structured = next((s for _, _, s in answers if s is not None), None)
    return {
        "text": "\n".join(t for texts, _, _ in answers for t in texts),
        "is_error": any(e for _, e, _ in answers),
        "structured": structured,
    }


@dataclass(frozen=True)
class ResponseView:
    """One buffered response; each part is computed only when a rule reads it."""

    status: int
    headers: dict[str, str]
    raw: bytes
    truncated: bool
    limits: Limits

    @property
    def content_type(self) -> str:
        """The media type of the response."""
        return media_type(self.headers)

    @cached_property
    def text(self) -> str:
        """The body as UTF-8, invalid bytes replaced."""
        return self.raw.decode("utf-8", errors="replace")

    @cached_property
    def parsed(self) -> ParsedJson:
        """The body parsed as JSON (bounded like a request body)."""
        return parse_json(self.raw, self.limits)

    def as_cel(self, fields: frozenset[str] | None) -> dict[str, Any]:
        """The `response` value with the fields rules read (None: all)."""
        wanted = set(FIELDS) if fields is None else fields
        out: dict[str, Any] = {}
        if "status" in wanted:
            out["status"] = self.status
        if "headers" in wanted:
            out["headers"] = self.headers
        if "body" in wanted:
            out["body"] = {
                "text": self.text,
                "json": self.parsed.value,
                "size": len(self.raw),
                "truncated": self.truncated,
            }
        if "llm" in wanted:
            done = completion_of(self.parsed.value)
            out["llm"] = done.as_cel() if done is not None else dict(EMPTY_LLM)
        if "mcp" in wanted:
            out["mcp"] = mcp_of(self.parsed.value) or dict(EMPTY_MCP)
        return out
