"""The `llm` attribute: an LLM API request as policies see it, whatever the provider's dialect.

Recognised: OpenAI chat/completions, completions, responses and embeddings; Anthropic
messages; Gemini generateContent / streamGenerateContent. Content given as a string or as
a list of parts both work. Never raises: a body of the wrong shape gives a partial view with
`error` saying what was skipped.

Views never coerce. A scalar field holds the value the provider would act on, or null with
an `error` entry naming the field as the body spells it (`max_tokens: not an integer`):

- integer fields take an integral JSON number (`4096.0` and `1e4` are 4096 and 10000); a
  string, bool, list, object or fraction is `not an integer`, a value past int64 (the JSON
  parser keeps such numbers as doubles) or past Gemini's int32 is `out of range`, and a
  value below 1 is `less than 1` (providers refuse it; llama.cpp reads -1 as "no limit").
  Gemini parses JSON as proto3 does, which takes an integer in a string: there `"8192"` is
  8192 (and `"0.5"` a temperature). When OpenAI's `max_tokens` and `max_completion_tokens`
  are both sent, `max_tokens` is the larger (the second replaces the first at OpenAI;
  compatible servers differ, so a cap judges the worst case).
- absent or JSON null is what the provider does then: `stream` false, the others null.
- roles are matched as the providers match them, case-sensitively: `User` is recorded as
  sent, with `messages[0].role: unknown role 'User'` (the provider would refuse the call).
  Gemini's `model` reads as `assistant` and a missing Gemini role as `user`.

Text the model reads is in the view: message content (documents and base64 text files
decoded), tool call arguments (`tool_calls`), tool results, tool descriptions and schemas,
instructions; `model_text` joins all of it for one detector call.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from authz.celtypes import BOOL, DOUBLE, INT, STRING, list_of, nullable, record
from authz.tokens import count as count_tokens

MAX_MESSAGES = 1000
MAX_PART_DEPTH = 8
MAX_TEXT_CHARS = 1 << 20
MAX_ERRORS = 10
# Base64 characters decoded from one file: enough for MAX_TEXT_CHARS bytes of text.
MAX_BASE64_CHARS = (MAX_TEXT_CHARS // 3 + 1) * 4

# Tokens the chat format adds around each message (role markers), and once to prime the reply
# (OpenAI's published count for its chat models).
MESSAGE_OVERHEAD = 3

INT64 = 1 << 63
INT32 = 1 << 31

MESSAGE = record("llm message", role=STRING, text=STRING)
TOOL_CALL = record("llm tool call", name=STRING, arguments=STRING)

TYPE = record(
    "llm",
    provider=STRING,
    operation=STRING,
    model=nullable(STRING),
    stream=nullable(BOOL),
    max_tokens=nullable(INT),
    temperature=nullable(DOUBLE),
    messages=list_of(MESSAGE),
    system_text=STRING,
    prompt_text=STRING,
    tools=list_of(STRING),
    tool_results=list_of(STRING),
    tool_calls=list_of(TOOL_CALL),
    model_text=STRING,
    input_chars=INT,
    estimated_input_tokens=INT,
    error=STRING,
)

FIELDS = TYPE.field_names

OPENAI_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
RESPONSES_ROLES = frozenset({"system", "developer", "user", "assistant"})
ANTHROPIC_ROLES = frozenset({"user", "assistant"})
GEMINI_ROLES = {"user": "user", "model": "assistant", "function": "tool"}
GEMINI_VERBS = {"generateContent": False, "streamGenerateContent": True}

_DECIMAL_INT = re.compile(r"-?[0-9]{1,40}")
_DECIMAL = re.compile(r"-?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,4})?")
_NOISE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
_TEXT_KEYS = ("text", "input_text", "output_text", "content", "output", "refusal", "thinking")


@dataclass
class LlmView:
    """What an LLM call asks for; provider "" means the request is not an LLM call."""

    provider: str = ""
    operation: str = ""
    model: str | None = None
    stream: bool | None = False
    max_tokens: int | None = None
    temperature: float | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    system_text: str = ""
    tools: list[str] = field(default_factory=list)
    tool_results: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    # Text the model reads that is in neither a message nor system_text (tool descriptions,
    # call arguments, tool results outside messages): part of model_text.
    read: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    more_errors: set[str] = field(default_factory=set)

    def add(self, role: str, text: str) -> None:
        """Record one message (system text is also kept apart)."""
        if len(self.messages) >= MAX_MESSAGES:
            self.note(f"more than {MAX_MESSAGES} messages; the rest are not in the view")
            return
        self.messages.append({"role": role, "text": text})

    def result(self, text: str) -> None:
        """Record a tool result that is not a message of its own."""
        self.tool_results.append(text)
        self.read.append(text)

    def call(self, name: str, arguments: str) -> None:
        """Record a tool call the model made (its arguments are text the model reads)."""
        if len(self.tool_calls) >= MAX_MESSAGES:
            self.note(f"more than {MAX_MESSAGES} tool calls; the rest are not in the view")
            return
        self.tool_calls.append({"name": name, "arguments": arguments})
        self.read.append(arguments)

    def note(self, problem: str) -> None:
        """Record why the view is partial (once per problem, at most MAX_ERRORS of them)."""
        if problem in self.errors:
            return
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(problem)
        else:
            self.more_errors.add(problem)

    def as_cel(self, tokens: bool = False) -> dict[str, Any]:
        """The `llm` attribute; `estimated_input_tokens` is counted only when `tokens` (a
        loaded expression reads it), else 0."""
        prompt = "\n".join(m["text"] for m in self.messages if m["role"] == "user" and m["text"])
        system = "\n".join(
            [self.system_text] * bool(self.system_text)
            + [
                m["text"]
                for m in self.messages
                if m["role"] in ("system", "developer") and m["text"]
            ]
        )
        model_text = "\n".join(
            t for t in [self.system_text, *(m["text"] for m in self.messages), *self.read] if t
        )
        errors = self.errors + [f"{len(self.more_errors)} more problems"] * bool(self.more_errors)
        return {
            "provider": self.provider,
            "operation": self.operation,
            "model": self.model,
            "stream": self.stream,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "messages": self.messages,
            "system_text": system,
            "prompt_text": prompt,
            "tools": self.tools,
            "tool_results": self.tool_results,
            "tool_calls": self.tool_calls,
            "model_text": model_text,
            "input_chars": sum(len(m["text"]) for m in self.messages)
            + len(self.system_text)
            + sum(len(t) for t in self.tool_results),
            "estimated_input_tokens": self.input_tokens(model_text) if tokens else 0,
            "error": "; ".join(errors),
        }

    def input_tokens(self, model_text: str) -> int:
        """What the model reads, in cl100k_base tokens (authz/tokens.py), plus the chat
        format's overhead: MESSAGE_OVERHEAD per message and once for the reply."""
        if not self.provider:
            return 0
        return count_tokens(model_text) + MESSAGE_OVERHEAD * (len(self.messages) + 1)


NOT_LLM = LlmView().as_cel()


# ---- scalar fields: the provider's value, or None with an error ----------------------------


def _integer(
    view: LlmView, value: Any, name: str, *, high: int = INT64, strings: bool = False
) -> int | None:
    """A token count: an integral number in [1, high), None when absent."""
    if value is None:
        return None
    if strings and isinstance(value, str) and _DECIMAL_INT.fullmatch(value):
        value = int(value)  # proto3 JSON (Gemini) reads "8192" as 8192
    if isinstance(value, bool) or not isinstance(value, int | float):
        view.note(f"{name}: not an integer")
        return None
    if isinstance(value, float):
        if math.isnan(value) or (math.isfinite(value) and not value.is_integer()):
            view.note(f"{name}: not an integer")
            return None
        if not math.isfinite(value) or abs(value) >= INT64:
            # The JSON parser keeps integers past int64 as doubles: never a usable count.
            view.note(f"{name}: out of range")
            return None
        value = int(value)
    if value >= high:
        view.note(f"{name}: out of range")
        return None
    if value < 1:
        view.note(f"{name}: less than 1")
        return None
    return value


def _double(view: LlmView, value: Any, name: str, *, strings: bool = False) -> float | None:
    """A number such as temperature, None when absent."""
    if value is None:
        return None
    if strings and isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = float(value)  # proto3 JSON (Gemini) reads "0.5" as 0.5
    if isinstance(value, bool) or not isinstance(value, int | float):
        view.note(f"{name}: not a number")
        return None
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        view.note(f"{name}: not a finite number")
        return None
    return number


def _flag(view: LlmView, value: Any, name: str) -> bool | None:
    """A JSON bool; absent is false (what the providers do)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    view.note(f"{name}: not a bool")
    return None


def _string(view: LlmView, value: Any, name: str) -> str | None:
    """A JSON string, None when absent."""
    if value is None or isinstance(value, str):
        return value
    view.note(f"{name}: not a string")
    return None


def _list(value: Any, view: LlmView, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        view.note(f"{what}: not a list")
        return []
    if len(value) > MAX_MESSAGES:
        view.note(f"{what}: more than {MAX_MESSAGES} items; the rest are not in the view")
        return value[:MAX_MESSAGES]
    return value


def _role(view: LlmView, value: Any, where: str, known: frozenset[str]) -> str:
    """The role as sent; an error when the provider would refuse it."""
    if value is None:
        view.note(f"{where}: missing")
        return ""
    if not isinstance(value, str):
        view.note(f"{where}: not a string")
        return ""
    if value not in known:
        view.note(f"{where}: unknown role {value[:40]!r}")
    return value


# ---- text ----------------------------------------------------------------------------------


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
        return _file_text(view, part.get("file_data"), f"{where}.file_data")
    if kind == "file" and isinstance(part.get("file"), dict):  # OpenAI chat
        return _file_text(view, part["file"].get("file_data"), f"{where}.file.file_data")
    if kind == "search_result":  # Anthropic
        return _join(
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
            body = _file_text(view, source.get("data"), f"{where}.source.data")
    return _join(
        text_of(part.get("title"), view, f"{where}.title", depth + 1),
        text_of(part.get("context"), view, f"{where}.context", depth + 1),
        body,
    )


def _file_text(view: LlmView, data: Any, where: str) -> str:
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


def _json_text(value: Any) -> str:
    """JSON text of a value (arguments, a function response); "" for none."""
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False)[:MAX_TEXT_CHARS]
    except (TypeError, ValueError, RecursionError):
        return ""


def _join(*texts: str) -> str:
    return "\n".join(t for t in texts if t)


def _arguments(view: LlmView, value: Any, where: str) -> str:
    """Call arguments as the model produced them: a string as sent, else its JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:MAX_TEXT_CHARS]
    view.note(f"{where}: not a string")
    return _json_text(value)


def _name(view: LlmView, value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if value is not None:
        view.note(f"{where}: not a string")
    return ""


def _tools(view: LlmView, tools: list[Any]) -> None:
    """Names of the tools offered; their descriptions and schemas are text the model reads."""
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            view.note(f"{where}: not an object")
            continue
        declarations = _either(view, tool, "functionDeclarations", "function_declarations", where)
        if declarations is not None:  # Gemini
            for j, declaration in enumerate(
                _list(declarations, view, f"{where}.functionDeclarations")
            ):
                if isinstance(declaration, dict):
                    _tool(view, declaration, f"{where}.functionDeclarations[{j}]")
                else:
                    view.note(f"{where}.functionDeclarations[{j}]: not an object")
            continue
        for nested in ("function", "custom"):  # OpenAI chat
            if isinstance(tool.get(nested), dict):
                _tool(view, tool[nested], f"{where}.{nested}")
                break
        else:
            _tool(view, tool, where)  # Anthropic, OpenAI Responses


def _tool(view: LlmView, tool: dict[str, Any], where: str) -> None:
    name = _name(view, tool.get("name"), f"{where}.name")
    if name:
        view.tools.append(name)
    description = _string(view, tool.get("description"), f"{where}.description")
    if description:
        view.read.append(description[:MAX_TEXT_CHARS])
    for key in ("parameters", "parametersJsonSchema", "input_schema", "format"):
        if tool.get(key) is not None:
            view.read.append(_json_text(tool[key]))


def _either(view: LlmView, obj: dict[str, Any], camel: str, snake: str, where: str) -> Any:
    """A proto3 JSON field, spelt lowerCamel or snake_case (both: refused, as Gemini does)."""
    if camel in obj and snake in obj:
        view.note(f"{where}: both {camel} and {snake}")
        return None
    return obj.get(camel, obj.get(snake))


# ---- dialects ------------------------------------------------------------------------------


def _openai_chat(body: dict[str, Any], view: LlmView) -> None:
    for i, message in enumerate(_list(body.get("messages"), view, "messages")):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            view.note(f"{where}: not an object")
            continue
        role = _role(view, message.get("role"), f"{where}.role", OPENAI_ROLES)
        text = text_of(message.get("content"), view, f"{where}.content")
        if role in ("tool", "function"):
            view.tool_results.append(text)
        view.add(role, text)
        for j, call in enumerate(_list(message.get("tool_calls"), view, f"{where}.tool_calls")):
            _openai_tool_call(view, call, f"{where}.tool_calls[{j}]")
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            _openai_tool_call(view, {"function": legacy}, f"{where}.function_call")
        elif legacy is not None:
            view.note(f"{where}.function_call: not an object")
    # max_completion_tokens replaced max_tokens at OpenAI; compatible servers may read
    # either, so a cap judges the larger. One of them unusable: no count at all.
    sent = {k: body[k] for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None}
    counts = [_integer(view, value, name) for name, value in sent.items()]
    usable = [count for count in counts if count is not None]
    view.max_tokens = max(usable) if usable and len(usable) == len(counts) else None


def _openai_tool_call(view: LlmView, call: Any, where: str) -> None:
    if not isinstance(call, dict):
        view.note(f"{where}: not an object")
        return
    if isinstance(call.get("custom"), dict):
        custom = call["custom"]
        view.call(
            _name(view, custom.get("name"), f"{where}.custom.name"),
            _arguments(view, custom.get("input"), f"{where}.custom.input"),
        )
        return
    function = call.get("function")
    if not isinstance(function, dict):
        view.note(f"{where}.function: not an object")
        return
    view.call(
        _name(view, function.get("name"), f"{where}.function.name"),
        _arguments(view, function.get("arguments"), f"{where}.function.arguments"),
    )


def _openai_responses(body: dict[str, Any], view: LlmView) -> None:
    view.system_text = text_of(body.get("instructions"), view, "instructions")
    prompt = body.get("prompt")  # a stored prompt: its variables are text the model reads
    if isinstance(prompt, dict) and isinstance(prompt.get("variables"), dict):
        for key, value in list(prompt["variables"].items())[:MAX_MESSAGES]:
            view.read.append(text_of(value, view, f"prompt.variables.{key[:40]}"))
    items = body.get("input")
    if isinstance(items, str):
        view.add("user", items[:MAX_TEXT_CHARS])
        items = []
    for i, item in enumerate(_list(items, view, "input")):
        where = f"input[{i}]"
        if isinstance(item, str):
            view.add("user", item[:MAX_TEXT_CHARS])
        elif isinstance(item, dict):
            _responses_item(view, item, where)
        else:
            view.note(f"{where}: not an object")
    view.max_tokens = _integer(view, body.get("max_output_tokens"), "max_output_tokens")


def _responses_item(view: LlmView, item: dict[str, Any], where: str) -> None:
    kind = item.get("type") or "message"
    if kind == "message":
        role = _role(view, item.get("role"), f"{where}.role", RESPONSES_ROLES)
        view.add(role, text_of(item.get("content"), view, f"{where}.content"))
    elif kind in ("function_call", "mcp_call"):
        view.call(
            _name(view, item.get("name"), f"{where}.name"),
            _arguments(view, item.get("arguments"), f"{where}.arguments"),
        )
        if kind == "mcp_call" and item.get("output") is not None:
            view.result(text_of(item.get("output"), view, f"{where}.output"))
    elif kind == "custom_tool_call":
        view.call(
            _name(view, item.get("name"), f"{where}.name"),
            _arguments(view, item.get("input"), f"{where}.input"),
        )
    elif kind in ("function_call_output", "custom_tool_call_output"):
        result = text_of(item.get("output"), view, f"{where}.output")
        view.tool_results.append(result)
        view.add("tool", result)
    elif kind in ("local_shell_call_output", "shell_call_output"):
        view.result(text_of(item.get("output"), view, f"{where}.output"))
    elif kind == "reasoning":
        view.read.append(text_of(item.get("summary"), view, f"{where}.summary"))
    elif kind != "item_reference":
        # Other items (search results, listed MCP tools, ...) may carry text the model
        # reads, and new kinds keep arriving: all of the item is scanned.
        view.read.append(_json_text(item))


def _prompts(value: Any, view: LlmView, what: str) -> None:
    if isinstance(value, str):
        view.add("user", value[:MAX_TEXT_CHARS])
        return
    for item in _list(value, view, what):
        if isinstance(item, str):
            view.add("user", item[:MAX_TEXT_CHARS])
        else:
            view.note(f"{what}: holds non-text items (token ids are not decoded)")


def _anthropic(body: dict[str, Any], view: LlmView) -> None:
    view.system_text = text_of(body.get("system"), view, "system")
    for i, message in enumerate(_list(body.get("messages"), view, "messages")):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            view.note(f"{where}: not an object")
            continue
        role = _role(view, message.get("role"), f"{where}.role", ANTHROPIC_ROLES)
        content = message.get("content")
        parts = content if isinstance(content, list) else [content]
        texts = []
        for j, part in enumerate(parts[:MAX_MESSAGES]):
            at = f"{where}.content[{j}]" if isinstance(content, list) else f"{where}.content"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ("tool_result", "mcp_tool_result", "web_search_tool_result"):
                view.result(text_of(part.get("content"), view, f"{at}.content"))
            elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
                view.call(
                    _name(view, part.get("name"), f"{at}.name"), _json_text(part.get("input"))
                )
            else:
                texts.append(text_of(part, view, at))
        if isinstance(content, list) and len(content) > MAX_MESSAGES:
            view.note(f"{where}.content: more than {MAX_MESSAGES} content parts")
        view.add(role, _join(*texts))
    view.max_tokens = _integer(view, body.get("max_tokens"), "max_tokens")


def _gemini(body: dict[str, Any], view: LlmView) -> None:
    system = _either(view, body, "systemInstruction", "system_instruction", "body")
    if isinstance(system, dict):
        view.system_text = _gemini_parts(view, system.get("parts"), "systemInstruction.parts")
    elif system is not None:
        view.system_text = text_of(system, view, "systemInstruction")
    for i, content in enumerate(_list(body.get("contents"), view, "contents")):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            view.note(f"{where}: not an object")
            continue
        sent = content.get("role")
        if sent is None or sent == "":
            role = "user"  # Gemini: "can be left blank or unset" for a single turn
        elif isinstance(sent, str) and sent in GEMINI_ROLES:
            role = GEMINI_ROLES[sent]
        else:
            role = _role(view, sent, f"{where}.role", frozenset(GEMINI_ROLES))
        view.add(role, _gemini_parts(view, content.get("parts"), f"{where}.parts"))
    config = _either(view, body, "generationConfig", "generation_config", "body")
    if isinstance(config, dict):
        name = "generationConfig.maxOutputTokens"
        tokens = _either(view, config, "maxOutputTokens", "max_output_tokens", "generationConfig")
        view.max_tokens = _integer(view, tokens, name, high=INT32, strings=True)
        temperature = config.get("temperature")
        view.temperature = _double(view, temperature, "generationConfig.temperature", strings=True)
    elif config is not None:
        view.note("generationConfig: not an object")


def _gemini_parts(view: LlmView, parts: Any, where: str) -> str:
    texts = []
    for j, part in enumerate(_list(parts, view, where)):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            view.note(f"{at}: not an object")
            continue
        call = _either(view, part, "functionCall", "function_call", at)
        response = _either(view, part, "functionResponse", "function_response", at)
        inline = _either(view, part, "inlineData", "inline_data", at)
        if isinstance(call, dict):
            view.call(
                _name(view, call.get("name"), f"{at}.functionCall.name"),
                _json_text(call.get("args")),
            )
        elif isinstance(response, dict):
            view.result(_json_text(response.get("response")))
        elif isinstance(inline, dict):
            texts.append(_file_text(view, inline.get("data"), f"{at}.inlineData.data"))
        elif "text" in part:
            texts.append(text_of(part["text"], view, f"{at}.text"))
        else:
            code = _either(view, part, "executableCode", "executable_code", at)
            output = _either(view, part, "codeExecutionResult", "code_execution_result", at)
            if isinstance(code, dict):
                texts.append(text_of(code.get("code"), view, f"{at}.executableCode.code"))
            elif isinstance(output, dict):
                view.result(text_of(output.get("output"), view, f"{at}.codeExecutionResult"))
    return _join(*texts)


# ---- which dialect -------------------------------------------------------------------------


def _gemini_call(path: str) -> tuple[str, bool] | None:
    """(model, streams) when the path calls a Gemini model method (`%3A` read as `:`)."""
    collection, _, last = path.rstrip("/").rpartition("/")
    name, colon, verb = unquote(last).rpartition(":")
    if not colon or verb not in GEMINI_VERBS:
        return None
    parent = collection.rpartition("/")[2]
    model = name if parent in ("models", "") else f"{unquote(parent)}/{name}"
    return model, GEMINI_VERBS[verb]


def _dialect(path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[str, str]:
    """(provider, operation) from the path, then headers and body shape."""
    if _gemini_call(path) is not None:
        return "gemini", "chat"
    if path.endswith("/chat/completions"):
        return "openai", "chat"
    if path.endswith("/responses"):
        return "openai", "responses"
    if path.endswith("/embeddings"):
        return "openai", "embeddings"
    if path.endswith("/completions"):
        return "openai", "completion"
    if path.endswith("/messages") and (
        "anthropic-version" in headers or "system" in body or "messages" in body
    ):
        return "anthropic", "messages"
    if "contents" in body:
        return "unknown", "chat"
    if "messages" in body:
        return "unknown", "chat"
    if "prompt" in body and "model" in body:
        return "unknown", "completion"
    return "", ""


def llm_view(path: str, headers: dict[str, str], body: Any, body_error: str | None) -> LlmView:
    """Build the view; a body that is not a JSON object is not an LLM call."""
    gemini = _gemini_call(path)
    if not isinstance(body, dict):
        provider, operation = _dialect(path, headers, {})
        view = LlmView(provider=provider, operation=operation)
        if gemini is not None:
            view.model, view.stream = gemini
        if provider:
            view.note(f"body is not a JSON object: {body_error or type(body).__name__}")
        return view
    provider, operation = _dialect(path, headers, body)
    view = LlmView(provider=provider, operation=operation)
    if not provider:
        return view
    if gemini is not None:
        # The method is in the path, and so is the model: a body `model` does not change it.
        view.model, view.stream = gemini
    else:
        view.model = _string(view, body.get("model"), "model")
        view.stream = _flag(view, body.get("stream"), "stream")
        view.temperature = _double(view, body.get("temperature"), "temperature")
    _tools(view, _list(body.get("tools"), view, "tools"))
    if provider == "gemini" or (provider == "unknown" and "contents" in body):
        _gemini(body, view)
    elif provider == "anthropic":
        _anthropic(body, view)
    elif operation == "responses":
        _openai_responses(body, view)
    elif operation == "embeddings":
        _prompts(body.get("input"), view, "input")
    elif operation == "completion":
        _prompts(body.get("prompt"), view, "prompt")
        suffix = body.get("suffix")
        view.read.append(text_of(suffix, view, "suffix") if suffix is not None else "")
        view.max_tokens = _integer(view, body.get("max_tokens"), "max_tokens")
    else:
        _openai_chat(body, view)
    return view
