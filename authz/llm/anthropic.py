"""Anthropic's messages dialect."""

from __future__ import annotations

from typing import Any

from authz.llm.fields import read_int, read_name, read_objects, read_role
from authz.llm.text import join, json_text, text_of
from authz.llm.view import MAX_MESSAGES, LlmView

ROLES = frozenset({"user", "assistant"})


def anthropic_messages(body: dict[str, Any], view: LlmView) -> None:
    """A messages request: system, messages with their tool uses and results, the token cap."""
    view.system_text = text_of(body.get("system"), view, "system")
    for where, message in read_objects(body.get("messages"), view, "messages"):
        role = read_role(view, message.get("role"), f"{where}.role", ROLES)
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
                    read_name(view, part.get("name"), f"{at}.name"), json_text(part.get("input"))
                )
            else:
                texts.append(text_of(part, view, at))
        if isinstance(content, list) and len(content) > MAX_MESSAGES:
            view.note(f"{where}.content: more than {MAX_MESSAGES} content parts")
        view.add(role, join(*texts))
    view.max_tokens = read_int(view, body.get("max_tokens"), "max_tokens")
