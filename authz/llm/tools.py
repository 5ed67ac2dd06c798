"""The tools an LLM request offers, in any dialect's shape: their names, and their
descriptions and schemas as text the model reads."""

from __future__ import annotations

from typing import Any

from authz.llm.fields import read_either, read_name, read_objects, read_string
from authz.llm.text import json_text
from authz.llm.view import MAX_TEXT_CHARS, LlmView


def read_tools(view: LlmView, tools: Any) -> None:
    """Names of the tools offered; their descriptions and schemas are text the model reads."""
    for where, tool in read_objects(tools, view, "tools"):
        declarations = read_either(
            view, tool, "functionDeclarations", "function_declarations", where
        )
        if declarations is not None:  # Gemini
            for at, declaration in read_objects(
                declarations, view, f"{where}.functionDeclarations"
            ):
                _tool(view, declaration, at)
            continue
        for nested in ("function", "custom"):  # OpenAI chat
            if isinstance(tool.get(nested), dict):
                _tool(view, tool[nested], f"{where}.{nested}")
                break
        else:
            _tool(view, tool, where)  # Anthropic, OpenAI Responses


def _tool(view: LlmView, tool: dict[str, Any], where: str) -> None:
    name = read_name(view, tool.get("name"), f"{where}.name")
    if name:
        view.tools.append(name)
    description = read_string(view, tool.get("description"), f"{where}.description")
    if description:
        view.read.append(description[:MAX_TEXT_CHARS])
    for key in ("parameters", "parametersJsonSchema", "input_schema", "format"):
        if tool.get(key) is not None:
            view.read.append(json_text(tool[key]))
