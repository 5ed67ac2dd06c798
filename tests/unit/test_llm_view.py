"""The `llm` view: every supported dialect, and bodies of the wrong shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authz.attributes import from_check_request
from authz.config.model import Limits
from authz.request_file import to_check_request


def llm(path: str, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The llm attribute for a POST."""
    request = to_check_request(
        {"method": "POST", "path": path, "body": body, "headers": headers or {}}
    )
    attrs = from_check_request(request, Limits())
    return attrs.variables(frozenset({("llm", None)}))["llm"]


def test_openai_chat_with_string_and_part_content() -> None:
    view = llm(
        "/v1/chat/completions",
        {
            "model": "gpt-4o",
            "stream": True,
            "max_completion_tokens": 256,
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Hello"},
                        {"type": "image_url", "image_url": {"url": "x"}},
                    ],
                },
                {"role": "assistant", "content": "Hi"},
                {"role": "tool", "tool_call_id": "1", "content": "42 degrees"},
                {"role": "user", "content": "And tomorrow?"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        },
    )
    assert (view["provider"], view["operation"], view["model"]) == ("openai", "chat", "gpt-4o")
    assert (view["stream"], view["max_tokens"], view["temperature"]) == (True, 256, 0.2)
    assert view["system_text"] == "You are terse."
    assert view["prompt_text"] == "Hello\nAnd tomorrow?"
    assert view["tools"] == ["get_weather"] and view["tool_results"] == ["42 degrees"]
    assert view["messages"][1] == {"role": "user", "text": "Hello"}
    assert view["input_chars"] == sum(len(m["text"]) for m in view["messages"]) + len("42 degrees")
    assert view["tool_calls"] == []
    assert view["model_text"] == "You are terse.\nHello\nHi\n42 degrees\nAnd tomorrow?"
    assert view["error"] == ""


def test_openai_completions_embeddings_and_responses() -> None:
    completion = llm("/v1/completions", {"model": "m", "prompt": ["a", "b"], "max_tokens": 9})
    assert (completion["operation"], completion["prompt_text"], completion["max_tokens"]) == (
        "completion",
        "a\nb",
        9,
    )
    embeddings = llm("/v1/embeddings", {"model": "e", "input": "embed me"})
    assert (embeddings["operation"], embeddings["prompt_text"]) == ("embeddings", "embed me")
    tokens = llm("/v1/embeddings", {"model": "e", "input": [[1, 2, 3]]})
    assert "token ids" in tokens["error"]
    responses = llm(
        "/v1/responses",
        {
            "model": "o4",
            "instructions": "Be safe.",
            "max_output_tokens": 50,
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Q?"}]},
                {"type": "function_call_output", "call_id": "c", "output": "tool said"},
            ],
            "tools": [{"type": "function", "name": "lookup"}],
        },
    )
    assert (responses["operation"], responses["system_text"], responses["prompt_text"]) == (
        "responses",
        "Be safe.",
        "Q?",
    )
    assert responses["tool_results"] == ["tool said"] and responses["tools"] == ["lookup"]
    assert responses["max_tokens"] == 50
    assert responses["model_text"] == "Be safe.\nQ?\ntool said"
    simple = llm("/v1/responses", {"model": "o4", "input": "just text"})
    assert simple["prompt_text"] == "just text"
    assert (simple["max_tokens"], embeddings["max_tokens"]) == (None, None)  # not sent: null


def test_anthropic_messages() -> None:
    view = llm(
        "/v1/messages",
        {
            "model": "claude-sonnet",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "Rules."}],
            "messages": [
                {"role": "user", "content": "Find the file"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t", "name": "search", "input": {"q": "x"}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "text", "text": "found it"}],
                        },
                        {"type": "text", "text": "thanks"},
                    ],
                },
            ],
            "tools": [{"name": "search", "input_schema": {}}],
        },
        {"anthropic-version": "2023-06-01"},
    )
    assert (view["provider"], view["operation"], view["max_tokens"]) == (
        "anthropic",
        "messages",
        1024,
    )
    assert view["system_text"] == "Rules."
    assert view["prompt_text"] == "Find the file\nthanks"
    assert view["tool_results"] == ["found it"] and view["tools"] == ["search"]
    assert view["tool_calls"] == [{"name": "search", "arguments": '{"q": "x"}'}]
    assert view["model_text"] == 'Rules.\nFind the file\nthanks\n{}\n{"q": "x"}\nfound it'
    assert view["error"] == ""


def test_gemini_generate_content() -> None:
    view = llm(
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        {
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "What is 2+2?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "calc", "args": {}}}]},
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"name": "calc", "response": {"r": 4}}}],
                },
            ],
            "generationConfig": {"maxOutputTokens": 64, "temperature": 0.5},
            "tools": [{"functionDeclarations": [{"name": "calc"}]}],
        },
    )
    assert (view["provider"], view["model"], view["stream"]) == ("gemini", "gemini-2.0-flash", True)
    assert view["system_text"] == "Be brief." and view["prompt_text"] == "What is 2+2?"
    assert view["tool_results"] == ['{"r": 4}'] and view["tools"] == ["calc"]
    assert (view["max_tokens"], view["temperature"]) == (64, 0.5)
    assert view["tool_calls"] == [{"name": "calc", "arguments": "{}"}]
    assert [m["role"] for m in view["messages"]] == ["user", "assistant", "user"]
    assert view["error"] == ""


def test_not_an_llm_call() -> None:
    view = llm("/api/orders", {"id": 7})
    assert view["provider"] == "" and view["prompt_text"] == "" and view["messages"] == []
    assert (view["model"], view["stream"], view["max_tokens"], view["error"]) == (
        None,
        False,
        None,
        "",
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "m", "messages": "hello"}, "messages: not a list"),
        (
            {"model": "m", "messages": [1, {"role": "user", "content": "ok"}]},
            "messages[0]: not an object",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content: content of an unexpected type was skipped",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}] * 5000},
            "messages: more than 1000 items; the rest are not in the view",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": json.loads("[" * 40 + '"deep"' + "]" * 40)}
                ],
            },
            "nested deeper than 8",
        ),
        ("not json at all", "body is not a JSON object"),
        ([1, 2, 3], "body is not a JSON object"),
    ],
)
def test_wrong_shapes_give_partial_views_with_an_error(body: Any, fragment: str) -> None:
    view = llm("/v1/chat/completions", body)
    assert (view["provider"], view["operation"]) == ("openai", "chat")
    assert fragment in view["error"]


def test_non_utf8_body_is_a_partial_view() -> None:
    request = to_check_request({"method": "POST", "path": "/v1/chat/completions"})
    request.attributes.request.http.raw_body = b'{"messages": "\xff"}'
    attrs = from_check_request(request, Limits())
    view = attrs.variables(frozenset({("llm", None)}))["llm"]
    assert view["provider"] == "openai" and "not valid UTF-8" in view["error"]
