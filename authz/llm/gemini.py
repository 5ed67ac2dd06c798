"""Gemini's generateContent / streamGenerateContent dialect (proto3 JSON: either spelling)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from authz.llm.fields import (
    INT32,
    read_double,
    read_either,
    read_int,
    read_name,
    read_objects,
    read_role,
)
from authz.llm.text import file_text, join, json_text, text_of
from authz.llm.view import LlmView

ROLES = {"user": "user", "model": "assistant", "function": "tool"}
VERBS = {"generateContent": False, "streamGenerateContent": True}


def gemini_model_call(path: str) -> tuple[str, bool] | None:
    """(model, streams) when the path calls a Gemini model method (`%3A` read as `:`)."""
    collection, _, last = path.rstrip("/").rpartition("/")
    name, colon, verb = unquote(last).rpartition(":")
    if not colon or verb not in VERBS:
        return None
    parent = collection.rpartition("/")[2]
    model = name if parent in ("models", "") else f"{unquote(parent)}/{name}"
    return model, VERBS[verb]


def gemini_generate(body: dict[str, Any], view: LlmView) -> None:
    """A generateContent request: system instruction, contents, generation config."""
    system = read_either(view, body, "systemInstruction", "system_instruction", "body")
    if isinstance(system, dict):
        view.system_text = _parts(view, system.get("parts"), "systemInstruction.parts")
    elif system is not None:
        view.system_text = text_of(system, view, "systemInstruction")
    for where, content in read_objects(body.get("contents"), view, "contents"):
        sent = content.get("role")
        if sent is None or sent == "":
            role = "user"  # Gemini: "can be left blank or unset" for a single turn
        elif isinstance(sent, str) and sent in ROLES:
            role = ROLES[sent]
        else:
            role = read_role(view, sent, f"{where}.role", frozenset(ROLES))
        view.add(role, _parts(view, content.get("parts"), f"{where}.parts"))
    config = read_either(view, body, "generationConfig", "generation_config", "body")
    if isinstance(config, dict):
        name = "generationConfig.maxOutputTokens"
        tokens = read_either(
            view, config, "maxOutputTokens", "max_output_tokens", "generationConfig"
        )
        view.max_tokens = read_int(view, tokens, name, high=INT32, strings=True)
        temperature = config.get("temperature")
        view.temperature = read_double(
            view, temperature, "generationConfig.temperature", strings=True
        )
    elif config is not None:
        view.note("generationConfig: not an object")


def _parts(view: LlmView, parts: Any, where: str) -> str:
    texts = []
    for at, part in read_objects(parts, view, where):
        call = read_either(view, part, "functionCall", "function_call", at)
        response = read_either(view, part, "functionResponse", "function_response", at)
        inline = read_either(view, part, "inlineData", "inline_data", at)
        if isinstance(call, dict):
            view.call(
                read_name(view, call.get("name"), f"{at}.functionCall.name"),
                json_text(call.get("args")),
            )
        elif isinstance(response, dict):
            view.result(json_text(response.get("response")))
        elif isinstance(inline, dict):
            texts.append(file_text(view, inline.get("data"), f"{at}.inlineData.data"))
        elif "text" in part:
            texts.append(text_of(part["text"], view, f"{at}.text"))
        else:
            code = read_either(view, part, "executableCode", "executable_code", at)
            output = read_either(view, part, "codeExecutionResult", "code_execution_result", at)
            if isinstance(code, dict):
                texts.append(text_of(code.get("code"), view, f"{at}.executableCode.code"))
            elif isinstance(output, dict):
                view.result(text_of(output.get("output"), view, f"{at}.codeExecutionResult"))
    return join(*texts)
