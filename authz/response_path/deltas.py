"""What each LLM dialect streams in its events: the answer text, and the completion so far.

The *text* of an event is what the dialect streams as the answer: the `content` of an
OpenAI chat delta (and tool-call `arguments`), `delta` of the Responses API text and
argument events, Anthropic `text_delta`/`input_json_delta`, Gemini parts' `text`, or the
whole `data` of an event that is not JSON. It is kept as slots (path in the parsed data,
text) so that redaction can write each piece back where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authz.body import parse_json
from authz.config.model import Limits
from authz.response_path.events import Event, Path, Unreadable
from authz.response_view import Completion, gemini_candidates, mcp_of


@dataclass
class StreamState:
    """What the events so far have said: the completion (finish reason, usage, tool calls,
    with their streamed arguments) and how many bytes came."""

    done: Completion = field(default_factory=Completion)
    calls: dict[Any, dict[str, str]] = field(default_factory=dict)
    size: int = 0

    def call(self, key: Any, name: str = "") -> dict[str, str] | None:
        """The tool call streamed under `key` (created on first sight, bounded)."""
        if key not in self.calls:
            before = len(self.done.tool_calls)
            self.done.add_call(name, "")
            if len(self.done.tool_calls) > before:
                self.calls[key] = self.done.tool_calls[-1]
        found = self.calls.get(key)
        if found is not None and name and not found["name"]:
            found["name"] = name
        return found

    def arguments(self, key: Any, text: str) -> None:
        """More of a tool call's arguments."""
        found = self.call(key)
        if found is not None and len(found["arguments"]) < 1 << 16:
            found["arguments"] += text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)]


def _text_at(value: Any, path: Path) -> str | None:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return None
    return value if isinstance(value, str) and value else None


def _openai_chunk(value: dict[str, Any], state: StreamState) -> list[Path]:
    paths: list[Path] = []
    for i, choice in _items(value.get("choices")):
        delta = _dict(choice.get("delta"))
        paths += [("choices", i, "delta", "content"), ("choices", i, "delta", "refusal")]
        paths.append(("choices", i, "text"))  # the legacy completions API
        for j, call in _items(delta.get("tool_calls")):
            function = _dict(call.get("function"))
            key = ("openai", choice.get("index", i), call.get("index", j))
            name = function.get("name")
            state.call(key, name if isinstance(name, str) else "")
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                state.arguments(key, arguments)
            paths.append(("choices", i, "delta", "tool_calls", j, "function", "arguments"))
        if isinstance(choice.get("finish_reason"), str):
            state.done.finish_reason = choice["finish_reason"]
    usage = _dict(value.get("usage"))
    state.done.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return paths


def _finished(state: StreamState, reason: Any, usage: Any) -> None:
    """A stop reason and token usage as the Responses API and Anthropic both report them."""
    if isinstance(reason, str):
        state.done.finish_reason = reason
    usage = _dict(usage)
    state.done.usage(usage.get("input_tokens"), usage.get("output_tokens"))


def _responses_event(value: dict[str, Any], state: StreamState) -> list[Path]:
    kind = value.get("type", "")
    if kind in ("response.output_text.delta", "response.refusal.delta"):
        return [("delta",)]
    key = ("responses", value.get("item_id") or value.get("output_index"))
    if kind == "response.output_item.added":
        item = _dict(value.get("item"))
        if item.get("type") == "function_call":
            key = ("responses", item.get("id") or value.get("output_index"))
            name = item.get("name")
            state.call(key, name if isinstance(name, str) else "")
    elif kind == "response.function_call_arguments.delta":
        if isinstance(value.get("delta"), str):
            state.arguments(key, value["delta"])
        return [("delta",)]
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        response = _dict(value.get("response"))
        details = _dict(response.get("incomplete_details"))
        _finished(state, details.get("reason") or response.get("status"), response.get("usage"))
    return []


def _anthropic_event(value: dict[str, Any], state: StreamState) -> list[Path]:
    kind = value.get("type")
    key = ("anthropic", value.get("index"))
    if kind == "message_start":
        usage = _dict(_dict(value.get("message")).get("usage"))
        state.done.usage(usage.get("input_tokens"), usage.get("output_tokens"))
    elif kind == "content_block_start":
        block = _dict(value.get("content_block"))
        if block.get("type") == "tool_use":
            name = block.get("name")
            state.call(key, name if isinstance(name, str) else "")
    elif kind == "content_block_delta":
        delta = _dict(value.get("delta"))
        if delta.get("type") == "input_json_delta":
            if isinstance(delta.get("partial_json"), str):
                state.arguments(key, delta["partial_json"])
            return [("delta", "partial_json")]
        return [("delta", "text")]
    elif kind == "message_delta":
        _finished(state, _dict(value.get("delta")).get("stop_reason"), value.get("usage"))
    return []


def _gemini_chunk(value: dict[str, Any], state: StreamState) -> list[Path]:
    paths: list[Path] = []
    for i, candidate in _items(value.get("candidates")):
        for j, _ in _items(_dict(candidate.get("content")).get("parts")):
            paths.append(("candidates", i, "content", "parts", j, "text"))
    chunk = Completion()
    gemini_candidates(value, chunk)
    for call in chunk.tool_calls:
        state.done.add_call(call["name"], call["arguments"])
    state.done.finish_reason = chunk.finish_reason or state.done.finish_reason
    state.done.usage(chunk.input_tokens, chunk.output_tokens)
    return paths


def read_event(event: Event, state: StreamState, limits: Limits) -> None:
    """Parse the event's data, find its answer text (slots) and note what it says."""
    data = event.data
    if data is None or data.strip() == "[DONE]":
        return
    if not data.lstrip().startswith(("{", "[")):
        event.slots = [((), data)] if data else []
        return
    parsed = parse_json(data.encode("utf-8"), limits)
    if parsed.error is not None:
        raise Unreadable(f"an event's data is not JSON: {parsed.error}")
    event.value = value = parsed.value
    if not isinstance(value, dict) or mcp_of(value) is not None:
        return
    if isinstance(value.get("choices"), list):
        paths = _openai_chunk(value, state)
    elif str(value.get("type", "")).startswith("response."):
        paths = _responses_event(value, state)
    elif value.get("type") in (
        "message_start",
        "content_block_start",
        "content_block_delta",
        "message_delta",
    ):
        paths = _anthropic_event(value, state)
    elif isinstance(value.get("candidates"), list):
        paths = _gemini_chunk(value, state)
    else:
        paths = []
    event.slots = [(p, text) for p in paths if (text := _text_at(value, p)) is not None]


def set_at(value: Any, path: Path, text: str) -> None:
    """Write `text` at `path` in a parsed event (a path read_event found)."""
    holder = value
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = text
