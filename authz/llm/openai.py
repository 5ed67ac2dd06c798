"""OpenAI's dialects: chat/completions, responses, completions and embeddings."""

from __future__ import annotations

from typing import Any

from authz.llm.fields import read_int, read_list, read_name, read_objects, read_role
from authz.llm.text import arguments_text, json_text, text_of
from authz.llm.view import MAX_MESSAGES, MAX_TEXT_CHARS, LlmView

CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
RESPONSES_ROLES = frozenset({"system", "developer", "user", "assistant"})


def openai_chat(body: dict[str, Any], view: LlmView) -> None:
    """A chat/completions request: messages, their tool calls, the token cap."""
    for where, message in read_objects(body.get("messages"), view, "messages"):
        role = read_role(view, message.get("role"), f"{where}.role", CHAT_ROLES)
        text = text_of(message.get("content"), view, f"{where}.content")
        if role in ("tool", "function"):
            view.tool_results.append(text)
        view.add(role, text)
        for j, call in enumerate(read_list(message.get("tool_calls"), view, f"{where}.tool_calls")):
            _tool_call(view, call, f"{where}.tool_calls[{j}]")
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            _tool_call(view, {"function": legacy}, f"{where}.function_call")
        elif legacy is not None:
            view.note(f"{where}.function_call: not an object")
    # max_completion_tokens replaced max_tokens at OpenAI; compatible servers may read
    # either, so a cap judges the larger. One of them unusable: no count at all.
    sent = {k: body[k] for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None}
    counts = [read_int(view, value, name) for name, value in sent.items()]
    usable = [count for count in counts if count is not None]
    view.max_tokens = max(usable) if usable and len(usable) == len(counts) else None


def _tool_call(view: LlmView, call: Any, where: str) -> None:
    if not isinstance(call, dict):
        view.note(f"{where}: not an object")
        return
    if isinstance(call.get("custom"), dict):
        custom = call["custom"]
        view.call(
            read_name(view, custom.get("name"), f"{where}.custom.name"),
            arguments_text(view, custom.get("input"), f"{where}.custom.input"),
        )
        return
    function = call.get("function")
    if not isinstance(function, dict):
        view.note(f"{where}.function: not an object")
        return
    view.call(
        read_name(view, function.get("name"), f"{where}.function.name"),
        arguments_text(view, function.get("arguments"), f"{where}.function.arguments"),
    )


def openai_responses(body: dict[str, Any], view: LlmView) -> None:
    """A responses request: instructions, stored prompt variables, input items."""
    view.system_text = text_of(body.get("instructions"), view, "instructions")
    prompt = body.get("prompt")  # a stored prompt: its variables are text the model reads
    if isinstance(prompt, dict) and isinstance(prompt.get("variables"), dict):
        for key, value in list(prompt["variables"].items())[:MAX_MESSAGES]:
            view.read.append(text_of(value, view, f"prompt.variables.{key[:40]}"))
    items = body.get("input")
    if isinstance(items, str):
        view.add("user", items[:MAX_TEXT_CHARS])
        items = []
    for i, item in enumerate(read_list(items, view, "input")):
        where = f"input[{i}]"
        if isinstance(item, str):
            view.add("user", item[:MAX_TEXT_CHARS])
        elif isinstance(item, dict):
            _responses_item(view, item, where)
        else:
            view.note(f"{where}: not an object")
    view.max_tokens = read_int(view, body.get("max_output_tokens"), "max_output_tokens")


def _responses_item(view: LlmView, item: dict[str, Any], where: str) -> None:
    kind = item.get("type") or "message"
    if kind == "message":
        role = read_role(view, item.get("role"), f"{where}.role", RESPONSES_ROLES)
        view.add(role, text_of(item.get("content"), view, f"{where}.content"))
    elif kind in ("function_call", "mcp_call"):
        view.call(
            read_name(view, item.get("name"), f"{where}.name"),
            arguments_text(view, item.get("arguments"), f"{where}.arguments"),
        )
        if kind == "mcp_call" and item.get("output") is not None:
            view.result(text_of(item.get("output"), view, f"{where}.output"))
    elif kind == "custom_tool_call":
        view.call(
            read_name(view, item.get("name"), f"{where}.name"),
            arguments_text(view, item.get("input"), f"{where}.input"),
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
        view.read.append(json_text(item))


def openai_embeddings(body: dict[str, Any], view: LlmView) -> None:
    """An embeddings request: its input texts."""
    _prompts(body.get("input"), view, "input")


def openai_completion(body: dict[str, Any], view: LlmView) -> None:
    """A (legacy) completions request: prompts, suffix, the token cap."""
    _prompts(body.get("prompt"), view, "prompt")
    suffix = body.get("suffix")
    view.read.append(text_of(suffix, view, "suffix") if suffix is not None else "")
    view.max_tokens = read_int(view, body.get("max_tokens"), "max_tokens")


def _prompts(value: Any, view: LlmView, what: str) -> None:
    if isinstance(value, str):
        view.add("user", value[:MAX_TEXT_CHARS])
        return
    for item in read_list(value, view, what):
        if isinstance(item, str):
            view.add("user", item[:MAX_TEXT_CHARS])
        else:
            view.note(f"{what}: holds non-text items (token ids are not decoded)")
