"""The `response` attribute in every dialect, held to its declared type; redaction keeps the
JSON what it was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authz.celtypes import mismatch
from authz.config.model import Limits
from authz.response_path.rewrite import redact_body, redact_json_text
from authz.response_view import ResponseView, completion_of, mcp_of
from authz.schema import RESPONSE_TYPE

OPENAI_CHAT = {
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking the weather.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 11, "completion_tokens": 22},
}
OPENAI_COMPLETIONS = {
    "object": "text_completion",
    "choices": [{"text": "once upon a time", "finish_reason": "length"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4},
}
OPENAI_RESPONSES = {
    "object": "response",
    "status": "completed",
    "output": [
        {"type": "reasoning", "summary": []},
        {
            "type": "message",
            "content": [{"type": "output_text", "text": "Paris.", "annotations": []}],
        },
        {"type": "function_call", "name": "lookup", "arguments": '{"q": "x"}'},
    ],
    "usage": {"input_tokens": 5, "output_tokens": 6},
}
ANTHROPIC = {
    "type": "message",
    "role": "assistant",
    "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "t1", "name": "search", "input": {"q": "paris"}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 7, "output_tokens": 8},
}
GEMINI = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"text": "Bonjour"}, {"functionCall": {"name": "f", "args": {"a": 1}}}],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 10},
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            OPENAI_CHAT,
            ("Checking the weather.", "tool_calls", [("weather", '{"city": "Paris"}')], 11, 22),
        ),
        (OPENAI_COMPLETIONS, ("once upon a time", "length", [], 3, 4)),
        (OPENAI_RESPONSES, ("Paris.", "completed", [("lookup", '{"q": "x"}')], 5, 6)),
        (ANTHROPIC, ("Let me look.", "tool_use", [("search", '{"q": "paris"}')], 7, 8)),
        (GEMINI, ("Bonjour", "STOP", [("f", '{"a": 1}')], 9, 10)),
    ],
    ids=["openai-chat", "openai-completions", "openai-responses", "anthropic", "gemini"],
)
def test_a_completion_in_every_dialect(body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    done = completion_of(body)
    assert done is not None
    value = done.as_cel()
    calls = [(c["name"], c["arguments"]) for c in value["tool_calls"]]
    usage = value["usage"]
    text, reason = value["text"], value["finish_reason"]
    assert (text, reason, calls, usage["input_tokens"], usage["output_tokens"]) == expected


@pytest.mark.parametrize(
    "body", [{"error": {"message": "rate limited"}}, [1, 2], "text", {"choices": "x"}, None]
)
def test_what_is_not_a_completion_is_empty_not_guessed(body: Any) -> None:
    view = ResponseView(200, {}, json.dumps(body).encode(), False, Limits())
    value = view.as_cel(frozenset({"llm"}))["llm"]
    assert value == {
        "text": "",
        "finish_reason": "",
        "tool_calls": [],
        "usage": {"input_tokens": None, "output_tokens": None},
    }


def test_mcp_results_errors_resources_prompts_and_batches() -> None:
    result = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "content": [
                {"type": "text", "text": "first"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///a", "text": "embedded"}},
            ],
            "structuredContent": {"n": 1},
            "isError": True,
        },
    }
    assert mcp_of(result) == {
        "text": "first\nembedded",
        "is_error": True,
        "structured": {"n": 1},
    }
    error = {"jsonrpc": "2.0", "id": 2, "error": {"code": -32602, "message": "bad arguments"}}
    assert mcp_of(error) == {"text": "bad arguments", "is_error": True, "structured": None}
    resource = {"jsonrpc": "2.0", "id": 3, "result": {"contents": [{"uri": "u", "text": "r"}]}}
    prompt = {
        "jsonrpc": "2.0",
        "id": 4,
        "result": {"messages": [{"role": "user", "content": {"type": "text", "text": "p"}}]},
    }
    assert mcp_of([resource, prompt]) == {"text": "r\np", "is_error": False, "structured": None}
    assert mcp_of({"jsonrpc": "2.0", "method": "notifications/progress"}) is None
    assert mcp_of(OPENAI_CHAT) is None


@pytest.mark.parametrize(
    "body", [OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI, {"jsonrpc": "2.0", "id": 1}, []]
)
def test_the_response_attribute_has_exactly_its_declared_type(body: Any) -> None:
    raw = json.dumps(body).encode()
    view = ResponseView(201, {"content-type": "application/json"}, raw, False, Limits())
    assert mismatch(view.as_cel(None), RESPONSE_TYPE, "response") == ""
    broken = ResponseView(200, {}, b"{not json", True, Limits())
    assert mismatch(broken.as_cel(None), RESPONSE_TYPE, "response") == ""


def test_only_the_fields_rules_read_are_built() -> None:
    view = ResponseView(200, {}, b"{}", False, Limits())
    assert set(view.as_cel(frozenset({"status"}))) == {"status"}


def test_redaction_touches_only_string_values() -> None:
    text = (
        '{"note": "mail bob@example.com",  "n": 12345678901234567890123,\n'
        '  "bob@example.com": [1.50, "key AKIAQ7ZXW3RT5YU8IOPL"], "esc": "a\\"b bob@example.com"}'
    )
    cleaned = redact_json_text(text)
    assert cleaned == (
        '{"note": "mail [EMAIL]",  "n": 12345678901234567890123,\n'
        '  "bob@example.com": [1.50, "key [AWS_ACCESS_KEY]"], "esc": "a\\"b [EMAIL]"}'
    )
    json.loads(cleaned)


def test_a_clean_body_is_left_byte_for_byte() -> None:
    raw = json.dumps(OPENAI_CHAT, indent=3).encode()
    assert redact_body(raw, True) is raw


def test_text_is_redacted_whole_and_bytes_that_are_not_utf8_cannot_be() -> None:
    assert redact_body(b"call 555-867-5309 or a@b.example.org", False) == (
        b"call [PHONE] or [EMAIL]"
    )
    assert redact_body(b"\xff\xfe a@b.example.org", False) is None


def test_non_ascii_survives_redaction() -> None:
    body = {"text": "Grüße an jane@example.com — 東京"}
    cleaned = redact_body(json.dumps(body, ensure_ascii=False).encode(), True)
    assert cleaned is not None
    assert json.loads(cleaned) == {"text": "Grüße an [EMAIL] — 東京"}
