"""The `llm` attribute: an LLM API request as policies see it, whatever the provider's dialect.

Recognised: OpenAI chat/completions, completions, responses and embeddings; Anthropic
messages; Gemini generateContent / streamGenerateContent. Content given as a string or as
a list of parts both work. Never raises: a body of the wrong shape gives a partial view with
`error` saying what was skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGES = 1000
MAX_PART_DEPTH = 8
MAX_TEXT_CHARS = 1 << 20

FIELDS = (
    "provider",
    "operation",
    "model",
    "stream",
    "max_tokens",
    "temperature",
    "messages",
    "system_text",
    "prompt_text",
    "tools",
    "tool_results",
    "input_chars",
    "error",
)


@dataclass
class LlmView:
    """What an LLM call asks for; provider "" means the request is not an LLM call."""

    provider: str = ""
    operation: str = ""
    model: str = ""
    stream: bool = False
    max_tokens: int = 0
    temperature: float | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    system_text: str = ""
    tools: list[str] = field(default_factory=list)
    tool_results: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, role: str, text: str) -> None:
        """Record one message (system text is also kept apart)."""
        if len(self.messages) >= MAX_MESSAGES:
            self.note(f"more than {MAX_MESSAGES} messages; the rest are not in the view")
            return
        self.messages.append({"role": role, "text": text})

    def note(self, problem: str) -> None:
        """Record why the view is partial (once per problem)."""
        if problem not in self.errors:
            self.errors.append(problem)

    def as_cel(self) -> dict[str, Any]:
        """The `llm` attribute."""
        prompt = "\n".join(m["text"] for m in self.messages if m["role"] == "user" and m["text"])
        system = "\n".join(
            [self.system_text] * bool(self.system_text)
            + [
                m["text"]
                for m in self.messages
                if m["role"] in ("system", "developer") and m["text"]
            ]
        )
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
            "input_chars": sum(len(m["text"]) for m in self.messages)
            + len(self.system_text)
            + sum(len(t) for t in self.tool_results),
            "error": "; ".join(self.errors),
        }


NOT_LLM = LlmView().as_cel()


def text_of(content: Any, view: LlmView, depth: int = 0) -> str:
    """Text in a content value: a string, a part, or a list of parts (nested, bounded)."""
    if isinstance(content, str):
        return content[:MAX_TEXT_CHARS]
    if depth >= MAX_PART_DEPTH:
        view.note(f"content parts nested deeper than {MAX_PART_DEPTH}")
        return ""
    if isinstance(content, list):
        texts = [text_of(part, view, depth + 1) for part in content[:MAX_MESSAGES]]
        if len(content) > MAX_MESSAGES:
            view.note(f"more than {MAX_MESSAGES} content parts")
        return "\n".join(t for t in texts if t)
    if isinstance(content, dict):
        for key in ("text", "input_text", "output_text", "content", "output"):
            if key in content:
                return text_of(content[key], view, depth + 1)
        return ""
    if content is not None:
        view.note("content of an unexpected type was skipped")
    return ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(value: Any, view: LlmView, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        view.note(f"{what} is not a list")
        return []
    return value


def _tool_names(tools: list[Any]) -> list[str]:
    names = []
    for tool in tools[:MAX_MESSAGES]:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        name = function.get("name") if isinstance(function, dict) else tool.get("name")
        if isinstance(name, str):
            names.append(name)
        for declaration in tool.get("functionDeclarations", []) or []:  # Gemini
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                names.append(declaration["name"])
    return names


def _openai_chat(body: dict[str, Any], view: LlmView) -> None:
    for message in _list(body.get("messages"), view, "messages"):
        if not isinstance(message, dict):
            view.note("a message is not an object")
            continue
        role = _str(message.get("role")) or "user"
        text = text_of(message.get("content"), view)
        if role in ("tool", "function"):
            view.tool_results.append(text)
        view.add(role, text)
    view.max_tokens = _int(body.get("max_completion_tokens")) or _int(body.get("max_tokens"))


def _openai_responses(body: dict[str, Any], view: LlmView) -> None:
    view.system_text = _str(body.get("instructions"))
    items = body.get("input")
    if isinstance(items, str):
        view.add("user", items)
    for item in _list(items, view, "input") if not isinstance(items, str) else []:
        if isinstance(item, str):
            view.add("user", item)
        elif isinstance(item, dict) and item.get("type") == "function_call_output":
            result = text_of(item.get("output"), view)
            view.tool_results.append(result)
            view.add("tool", result)
        elif isinstance(item, dict):
            view.add(_str(item.get("role")) or "user", text_of(item.get("content"), view))
    view.max_tokens = _int(body.get("max_output_tokens"))


def _prompts(value: Any, view: LlmView, what: str) -> None:
    if isinstance(value, str):
        view.add("user", value)
        return
    for item in _list(value, view, what):
        if isinstance(item, str):
            view.add("user", item)
        else:
            view.note(f"{what} holds non-text items (token ids are not decoded)")


def _anthropic(body: dict[str, Any], view: LlmView) -> None:
    view.system_text = text_of(body.get("system"), view)
    for message in _list(body.get("messages"), view, "messages"):
        if not isinstance(message, dict):
            view.note("a message is not an object")
            continue
        role = _str(message.get("role")) or "user"
        content = message.get("content")
        parts = content if isinstance(content, list) else [content]
        texts = []
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "tool_result":
                view.tool_results.append(text_of(part.get("content"), view))
            elif isinstance(part, dict) and part.get("type") == "tool_use":
                continue
            else:
                texts.append(text_of(part, view))
        view.add(role, "\n".join(t for t in texts if t))
    view.max_tokens = _int(body.get("max_tokens"))


def _gemini(body: dict[str, Any], view: LlmView) -> None:
    system = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(system, dict):
        view.system_text = text_of(system.get("parts"), view)
    for content in _list(body.get("contents"), view, "contents"):
        if not isinstance(content, dict):
            view.note("a content entry is not an object")
            continue
        role = {"model": "assistant"}.get(_str(content.get("role")), "user")
        texts = []
        for part in _list(content.get("parts"), view, "parts"):
            if isinstance(part, dict) and "functionResponse" in part:
                response = part["functionResponse"]
                result = response.get("response") if isinstance(response, dict) else None
                view.tool_results.append(_json_text(result))
            elif isinstance(part, dict) and "text" in part:
                texts.append(text_of(part["text"], view))
        view.add(role, "\n".join(texts))
    config = body.get("generationConfig") or body.get("generation_config") or {}
    if isinstance(config, dict):
        view.max_tokens = _int(config.get("maxOutputTokens") or config.get("max_output_tokens"))
        view.temperature = _float(config.get("temperature"))


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)[:MAX_TEXT_CHARS]
    except (TypeError, ValueError):
        return ""


def _dialect(path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[str, str]:
    """(provider, operation) from the path, then headers and body shape."""
    if ":generateContent" in path or ":streamGenerateContent" in path:
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
    if not isinstance(body, dict):
        provider, operation = _dialect(path, headers, {})
        view = LlmView(provider=provider, operation=operation)
        if provider:
            view.note(f"body is not a JSON object: {body_error or type(body).__name__}")
        return view
    provider, operation = _dialect(path, headers, body)
    view = LlmView(provider=provider, operation=operation)
    if not provider:
        return view
    view.model = _str(body.get("model"))
    if provider == "gemini" and not view.model and "/models/" in path:
        view.model = path.rsplit("/models/", 1)[1].split(":", 1)[0]
    view.stream = body.get("stream") is True or ":streamGenerateContent" in path
    view.temperature = _float(body.get("temperature"))
    view.tools = _tool_names(_list(body.get("tools"), view, "tools"))
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
        view.max_tokens = _int(body.get("max_tokens"))
    else:
        _openai_chat(body, view)
    return view
