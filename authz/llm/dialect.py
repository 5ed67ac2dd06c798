"""Which dialect an LLM request speaks (path, then headers and body shape), and its view."""

from __future__ import annotations

from typing import Any

from authz.llm.anthropic import anthropic_messages
from authz.llm.fields import read_double, read_flag, read_string
from authz.llm.gemini import gemini_generate, gemini_model_call
from authz.llm.openai import openai_chat, openai_completion, openai_embeddings, openai_responses
from authz.llm.tools import read_tools
from authz.llm.view import LlmView


def dialect(path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[str, str]:
    """(provider, operation) from the path, then headers and body shape."""
    if gemini_model_call(path) is not None:
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
    model_call = gemini_model_call(path)
    if not isinstance(body, dict):
        provider, operation = dialect(path, headers, {})
        view = LlmView(provider=provider, operation=operation)
        if model_call is not None:
            view.model, view.stream = model_call
        if provider:
            view.note(f"body is not a JSON object: {body_error or type(body).__name__}")
        return view
    provider, operation = dialect(path, headers, body)
    view = LlmView(provider=provider, operation=operation)
    if not provider:
        return view
    if model_call is not None:
        # The method is in the path, and so is the model: a body `model` does not change it.
        view.model, view.stream = model_call
    else:
        view.model = read_string(view, body.get("model"), "model")
        view.stream = read_flag(view, body.get("stream"), "stream")
        view.temperature = read_double(view, body.get("temperature"), "temperature")
    read_tools(view, body.get("tools"))
    if provider == "gemini" or (provider == "unknown" and "contents" in body):
        gemini_generate(body, view)
    elif provider == "anthropic":
        anthropic_messages(body, view)
    elif operation == "responses":
        openai_responses(body, view)
    elif operation == "embeddings":
        openai_embeddings(body, view)
    elif operation == "completion":
        openai_completion(body, view)
    else:
        openai_chat(body, view)
    return view
