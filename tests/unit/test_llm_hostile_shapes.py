"""Hostile shapes per dialect: every `llm` field holds what the provider would act on, or
null with an `error` naming the field; every view matches the declared `llm.TYPE`.

Each row sends a JSON text (so `1e4`, `4096.0` and numbers past int64 reach the parser as
written) through the same path as a real check, and states the field's value and the whole
`error`. Before strict views, `max_tokens` read 4096.0, "4096", 1e4 and 2**63 all as 0 with
no error, `stream: "true"` read as false, and a missing `max_tokens` as 0.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz import llm as llm_module
from authz.attributes import from_check_request
from authz.celtypes import CelType, mismatch
from authz.config.model import Limits
from authz.request_file import to_check_request
from tests.unit.helpers import ENGINES, compile_policy, decide_request

ANTHROPIC = {"anthropic-version": "2023-06-01"}
GEMINI = "/v1beta/models/gemini-pro:generateContent"
HI = [{"role": "user", "content": "hi"}]

# dialect: (path, headers, a clean body the row's fragment is spliced into)
DIALECTS: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {}, {"model": "gpt-4o", "messages": HI}),
    "completion": ("/v1/completions", {}, {"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}),
    "responses": ("/v1/responses", {}, {"model": "o4-mini", "input": "hi"}),
    "embeddings": ("/v1/embeddings", {}, {"model": "text-embedding-3-small", "input": "hi"}),
    "anthropic": (
        "/v1/messages",
        ANTHROPIC,
        {"model": "claude-sonnet-4", "max_tokens": 1024, "messages": HI},
    ),
    "gemini": (GEMINI, {}, {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
}


def body_text(dialect: str, fragment: str) -> str:
    """The dialect's clean body with the fragment's members, written as given, in place of
    the clean ones (no key twice)."""
    _, _, base = DIALECTS[dialect]
    replaced = json.loads("{" + fragment + "}") if fragment else {}
    kept = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in base.items() if k not in replaced]
    return "{" + ", ".join(kept + [fragment] * bool(fragment)) + "}"


def view_of(path: str, text: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The llm attribute of a POST whose body is this JSON text, built as a check builds it."""
    request = to_check_request(
        {"method": "POST", "path": path, "body": text, "headers": headers or {}}
    )
    attrs = from_check_request(request, Limits())
    return attrs.variables(frozenset({("llm", None)}))["llm"]


def with_members(dialect: str, members: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """The path, JSON text and headers of a POST of the dialect's clean body with `members`
    in place of its own."""
    path, headers, clean = DIALECTS[dialect]
    return path, json.dumps({**clean, **members}), headers


def dialect_view(dialect: str, fragment: str) -> dict[str, Any]:
    path, headers, _ = DIALECTS[dialect]
    return view_of(path, body_text(dialect, fragment), headers)


# (dialect, JSON members, field, expected value, expected whole `error`)
SCALARS: list[tuple[str, str, str, Any, str]] = [
    # ---- OpenAI chat: max_tokens
    ("chat", '"max_tokens": 4096.0', "max_tokens", 4096, ""),
    ("chat", '"max_tokens": 1e4', "max_tokens", 10000, ""),
    ("chat", '"max_tokens": 1E4', "max_tokens", 10000, ""),
    ("chat", '"max_tokens": 4096', "max_tokens", 4096, ""),
    ("chat", '"max_tokens": "4096"', "max_tokens", None, "max_tokens: not an integer"),
    ("chat", '"max_tokens": true', "max_tokens", None, "max_tokens: not an integer"),
    ("chat", '"max_tokens": [4096]', "max_tokens", None, "max_tokens: not an integer"),
    ("chat", '"max_tokens": {"n": 4096}', "max_tokens", None, "max_tokens: not an integer"),
    ("chat", '"max_tokens": 4096.5', "max_tokens", None, "max_tokens: not an integer"),
    ("chat", '"max_tokens": 9223372036854775808', "max_tokens", None, "max_tokens: out of range"),
    ("chat", '"max_tokens": 1e300', "max_tokens", None, "max_tokens: out of range"),
    ("chat", '"max_tokens": 1e400', "max_tokens", None, "max_tokens: out of range"),
    ("chat", '"max_tokens": 0', "max_tokens", None, "max_tokens: less than 1"),
    ("chat", '"max_tokens": -1', "max_tokens", None, "max_tokens: less than 1"),
    ("chat", "", "max_tokens", None, ""),
    ("chat", '"max_tokens": null', "max_tokens", None, ""),
    # both sent: the larger (OpenAI replaced max_tokens with max_completion_tokens)
    ("chat", '"max_tokens": 5000, "max_completion_tokens": 100', "max_tokens", 5000, ""),
    ("chat", '"max_tokens": 100, "max_completion_tokens": 5000.0', "max_tokens", 5000, ""),
    (
        "chat",
        '"max_tokens": 100, "max_completion_tokens": "5000"',
        "max_tokens",
        None,
        "max_completion_tokens: not an integer",
    ),
    # ---- OpenAI chat: stream, temperature, model
    ("chat", "", "stream", False, ""),
    ("chat", '"stream": true', "stream", True, ""),
    ("chat", '"stream": "true"', "stream", None, "stream: not a bool"),
    ("chat", '"stream": 1', "stream", None, "stream: not a bool"),
    ("chat", '"stream": "false"', "stream", None, "stream: not a bool"),
    ("chat", '"stream": [true]', "stream", None, "stream: not a bool"),
    ("chat", '"temperature": 1', "temperature", 1.0, ""),
    ("chat", '"temperature": "0.2"', "temperature", None, "temperature: not a number"),
    ("chat", '"temperature": false', "temperature", None, "temperature: not a number"),
    ("chat", '"temperature": 1e400', "temperature", None, "temperature: not a finite number"),
    ("chat", '"model": 5', "model", None, "model: not a string"),
    ("chat", '"model": ["gpt-4o"]', "model", None, "model: not a string"),
    ("chat", '"model": null', "model", None, ""),
    ("chat", '"model": "gpt-4o"', "model", "gpt-4o", ""),
    # ---- OpenAI chat: roles are case-sensitive, unknown roles are refused by OpenAI
    (
        "chat",
        '"messages": [{"role": "User", "content": "hi"}]',
        "messages",
        [{"role": "User", "text": "hi"}],
        "messages[0].role: unknown role 'User'",
    ),
    (
        "chat",
        '"messages": [{"content": "hi"}]',
        "messages",
        [{"role": "", "text": "hi"}],
        "messages[0].role: missing",
    ),
    (
        "chat",
        '"messages": [{"role": 1, "content": "hi"}]',
        "messages",
        [{"role": "", "text": "hi"}],
        "messages[0].role: not a string",
    ),
    # ---- completions
    ("completion", '"max_tokens": 4096.0', "max_tokens", 4096, ""),
    ("completion", '"max_tokens": "4096"', "max_tokens", None, "max_tokens: not an integer"),
    ("completion", "", "max_tokens", None, ""),
    ("completion", '"stream": "true"', "stream", None, "stream: not a bool"),
    # ---- Responses
    ("responses", '"max_output_tokens": 50.0', "max_tokens", 50, ""),
    ("responses", '"max_output_tokens": 1e4', "max_tokens", 10000, ""),
    (
        "responses",
        '"max_output_tokens": "50"',
        "max_tokens",
        None,
        "max_output_tokens: not an integer",
    ),
    ("responses", "", "max_tokens", None, ""),
    ("responses", '"stream": 1', "stream", None, "stream: not a bool"),
    ("responses", '"temperature": "hot"', "temperature", None, "temperature: not a number"),
    (
        "responses",
        '"input": [{"role": "User", "content": "hi"}]',
        "messages",
        [{"role": "User", "text": "hi"}],
        "input[0].role: unknown role 'User'",
    ),
    # ---- embeddings
    ("embeddings", "", "max_tokens", None, ""),
    ("embeddings", '"model": {"id": "e"}', "model", None, "model: not a string"),
    # ---- Anthropic
    ("anthropic", '"max_tokens": 8192.0', "max_tokens", 8192, ""),
    ("anthropic", '"max_tokens": "8192"', "max_tokens", None, "max_tokens: not an integer"),
    ("anthropic", '"max_tokens": false', "max_tokens", None, "max_tokens: not an integer"),
    ("anthropic", '"max_tokens": 1e19', "max_tokens", None, "max_tokens: out of range"),
    ("anthropic", '"max_tokens": null', "max_tokens", None, ""),
    ("anthropic", '"stream": "true"', "stream", None, "stream: not a bool"),
    ("anthropic", '"temperature": "1"', "temperature", None, "temperature: not a number"),
    (
        "anthropic",
        '"messages": [{"role": "system", "content": "hi"}]',
        "messages",
        [{"role": "system", "text": "hi"}],
        "messages[0].role: unknown role 'system'",
    ),
    # ---- Gemini: proto3 JSON takes an int32 as a number or a decimal string
    ("gemini", '"generationConfig": {"maxOutputTokens": 8192.0}', "max_tokens", 8192, ""),
    ("gemini", '"generationConfig": {"maxOutputTokens": "8192"}', "max_tokens", 8192, ""),
    ("gemini", '"generationConfig": {"max_output_tokens": 1e4}', "max_tokens", 10000, ""),
    ("gemini", '"generation_config": {"maxOutputTokens": 64}', "max_tokens", 64, ""),
    (
        "gemini",
        '"generationConfig": {"maxOutputTokens": "8192.0"}',
        "max_tokens",
        None,
        "generationConfig.maxOutputTokens: not an integer",
    ),
    (
        "gemini",
        '"generationConfig": {"maxOutputTokens": true}',
        "max_tokens",
        None,
        "generationConfig.maxOutputTokens: not an integer",
    ),
    (
        "gemini",
        '"generationConfig": {"maxOutputTokens": 2147483648}',
        "max_tokens",
        None,
        "generationConfig.maxOutputTokens: out of range",
    ),
    (
        "gemini",
        '"generationConfig": {"maxOutputTokens": 0}',
        "max_tokens",
        None,
        "generationConfig.maxOutputTokens: less than 1",
    ),
    (
        "gemini",
        '"generationConfig": {"maxOutputTokens": 64, "max_output_tokens": 99999}',
        "max_tokens",
        None,
        "generationConfig: both maxOutputTokens and max_output_tokens",
    ),
    ("gemini", "", "max_tokens", None, ""),
    ("gemini", '"generationConfig": {"temperature": "0.5"}', "temperature", 0.5, ""),
    (
        "gemini",
        '"generationConfig": {"temperature": "warm"}',
        "temperature",
        None,
        "generationConfig.temperature: not a number",
    ),
    (
        "gemini",
        '"generationConfig": {"temperature": "NaN"}',
        "temperature",
        None,
        "generationConfig.temperature: not a number",
    ),
    ("gemini", '"generationConfig": 5', "max_tokens", None, "generationConfig: not an object"),
    # the model is the path's, whatever the body says; the method decides streaming
    ("gemini", '"model": "gemini-ultra"', "model", "gemini-pro", ""),
    ("gemini", '"stream": true', "stream", False, ""),
    (
        "gemini",
        '"contents": [{"role": "User", "parts": [{"text": "hi"}]}]',
        "messages",
        [{"role": "User", "text": "hi"}],
        "contents[0].role: unknown role 'User'",
    ),
    (
        "gemini",
        '"contents": [{"parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "yo"}]}]',
        "messages",
        [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "yo"}],
        "",
    ),
]


@pytest.mark.parametrize(
    ("dialect", "fragment", "field", "value", "error"),
    SCALARS,
    ids=[f"{d}-{f or 'clean'}" for d, f, *_ in SCALARS],
)
def test_field_holds_the_providers_value_or_null_with_an_error(
    dialect: str, fragment: str, field: str, value: Any, error: str
) -> None:
    view = dialect_view(dialect, fragment)
    assert (view[field], view["error"]) == (value, error)
    assert type(view[field]) is type(value)  # 4096, not 4096.0; 1.0, not 1
    assert conformance(view, llm_module.TYPE) == []


@pytest.mark.parametrize(
    ("path", "model", "stream"),
    [
        ("/v1beta/models/gemini-pro:generateContent", "gemini-pro", False),
        ("/v1beta/models/gemini-pro%3AgenerateContent", "gemini-pro", False),
        ("/v1beta/models/gemini-pro%3astreamGenerateContent", "gemini-pro", True),
        ("/v1beta/models/gemini%2Dpro%3AgenerateContent", "gemini-pro", False),
        (
            "/v1/projects/p/locations/l/publishers/google/models/gemini-2.0:generateContent",
            "gemini-2.0",
            False,
        ),
        ("/v1beta/tunedModels/mine:generateContent", "tunedModels/mine", False),
    ],
)
def test_gemini_model_and_method_come_from_the_path(path: str, model: str, stream: bool) -> None:
    view = view_of(path, json.dumps({"model": "other", "contents": [{"parts": [{"text": "x"}]}]}))
    assert (view["provider"], view["model"], view["stream"], view["error"]) == (
        "gemini",
        model,
        stream,
        "",
    )


# ---- text the model reads is in the view -----------------------------------------------

SECRET = "AKIAQ7ZXW3RT5YU8IOPL"
TEXT_FILE = base64.b64encode(f"config:\n  key: {SECRET}\n".encode()).decode()

# (name, dialect, members in place of the clean body's, the field besides model_text the
# secret must be in)
READ_BY_THE_MODEL: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "openai assistant tool_calls arguments",
        "chat",
        {
            "messages": [
                {"role": "user", "content": "deploy"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "deploy", "arguments": f'{{"key": "{SECRET}"}}'},
                        }
                    ],
                },
            ],
        },
        "tool_calls",
    ),
    (
        "openai tool description",
        "chat",
        {
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "t", "description": f"use key {SECRET}"},
                }
            ],
        },
        "model_text",
    ),
    (
        "openai file part",
        "chat",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "file", "file": {"filename": "a.txt", "file_data": TEXT_FILE}}
                    ],
                }
            ],
        },
        "prompt_text",
    ),
    (
        "anthropic tool_use input",
        "anthropic",
        {
            "messages": [
                {"role": "user", "content": "deploy"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "t", "name": "deploy", "input": {"k": SECRET}}
                    ],
                },
            ],
        },
        "tool_calls",
    ),
    (
        "anthropic text document",
        "anthropic",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {
                                "type": "text",
                                "media_type": "text/plain",
                                "data": f"key {SECRET}",
                            },
                        },
                        {"type": "text", "text": "summarise"},
                    ],
                }
            ],
        },
        "prompt_text",
    ),
    (
        "anthropic content document",
        "anthropic",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {
                                "type": "content",
                                "content": [{"type": "text", "text": f"key {SECRET}"}],
                            },
                        }
                    ],
                }
            ],
        },
        "messages",
    ),
    (
        "anthropic tool description",
        "anthropic",
        {
            "tools": [{"name": "t", "description": f"key {SECRET}", "input_schema": {}}],
        },
        "model_text",
    ),
    (
        "gemini functionDeclarations description",
        "gemini",
        {
            "contents": [{"parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "t", "description": f"key {SECRET}"}]}],
        },
        "model_text",
    ),
    (
        "gemini functionCall args",
        "gemini",
        {
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "t", "args": {"k": SECRET}}}],
                },
            ]
        },
        "tool_calls",
    ),
    (
        "responses instructions",
        "responses",
        {"instructions": f"key {SECRET}"},
        "system_text",
    ),
    (
        "responses function_call arguments",
        "responses",
        {
            "input": [
                {"role": "user", "content": "hi"},
                {
                    "type": "function_call",
                    "call_id": "c",
                    "name": "t",
                    "arguments": f'{{"k": "{SECRET}"}}',
                },
            ],
        },
        "tool_calls",
    ),
    (
        "responses custom_tool_call_output",
        "responses",
        {
            "input": [{"type": "custom_tool_call_output", "call_id": "c", "output": SECRET}],
        },
        "tool_results",
    ),
    (
        "responses input_file base64 text",
        "responses",
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_file",
                            "filename": "config.yaml",
                            "file_data": f"data:text/plain;base64,{TEXT_FILE}",
                        }
                    ],
                }
            ],
        },
        "prompt_text",
    ),
    (
        "completions suffix",
        "completion",
        {"prompt": "def f():", "suffix": f"# {SECRET}"},
        "model_text",
    ),
]


@pytest.mark.parametrize(
    ("dialect", "members", "field"),
    [row[1:] for row in READ_BY_THE_MODEL],
    ids=[row[0] for row in READ_BY_THE_MODEL],
)
def test_text_the_model_reads_is_in_the_view(
    dialect: str, members: dict[str, Any], field: str
) -> None:
    view = view_of(*with_members(dialect, members))
    assert view["error"] == ""
    assert SECRET in view["model_text"]
    assert SECRET in json.dumps(view[field])
    assert conformance(view, llm_module.TYPE) == []


def test_tool_calls_record_arguments_as_the_model_produced_them() -> None:
    openai = view_of(
        "/v1/chat/completions",
        json.dumps(
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                            {"type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}},
                        ],
                    }
                ],
            }
        ),
    )
    assert openai["tool_calls"] == [
        {"name": "f", "arguments": '{"a":1}'},
        {"name": "sql", "arguments": "SELECT 1"},
    ]
    anthropic = dialect_view(
        "anthropic",
        '"messages": [{"role": "assistant", "content": '
        '[{"type": "tool_use", "id": "t", "name": "s", "input": {"q": "é"}}]}]',
    )
    assert anthropic["tool_calls"] == [{"name": "s", "arguments": '{"q": "é"}'}]
    gemini = dialect_view(
        "gemini",
        '"contents": [{"role": "model", "parts": [{"functionCall": {"name": "c", "args": {}}}]}]',
    )
    assert gemini["tool_calls"] == [{"name": "c", "arguments": "{}"}]
    wrong = dialect_view(
        "chat",
        '"messages": [{"role": "assistant", "tool_calls": '
        '[{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]',
    )
    assert wrong["tool_calls"] == [{"name": "f", "arguments": '{"a": 1}'}]
    assert wrong["error"] == "messages[0].tool_calls[0].function.arguments: not a string"


def test_files_are_decoded_only_when_they_are_text() -> None:
    def responses_file(data: str) -> dict[str, Any]:
        part = {"type": "input_file", "filename": "f", "file_data": data}
        return dialect_view(
            "responses", '"input": ' + json.dumps([{"role": "user", "content": [part]}])
        )

    bare = responses_file(TEXT_FILE)
    assert SECRET in bare["prompt_text"] and bare["error"] == ""
    noise = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(128))
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nstream\n" + noise
    binary_pdf = responses_file("data:application/pdf;base64," + base64.b64encode(pdf).decode())
    assert (binary_pdf["prompt_text"], binary_pdf["error"]) == ("", "")
    # the bytes decide, not the label: text sent as octet-stream is read as text
    labelled = responses_file(f"data:application/octet-stream;base64,{TEXT_FILE}")
    assert SECRET in labelled["prompt_text"]
    # a few bad bytes do not hide the rest of a text file
    spoiled = responses_file(base64.b64encode(b"\xff" + SECRET.encode() * 3).decode())
    assert SECRET in spoiled["prompt_text"]
    binary = responses_file(base64.b64encode(b"\x89PNG\r\n\x1a\n\xff\xfe\xfd").decode())
    assert (binary["prompt_text"], binary["error"]) == ("", "")
    broken = responses_file("not base64!")
    assert broken["error"] == "input[0].content[0].file_data: not valid base64"
    nul = responses_file(base64.b64encode(b"a\0" + SECRET.encode()).decode())
    assert SECRET in nul["prompt_text"] and "\0" not in nul["prompt_text"]


def test_model_text_joins_everything_the_model_reads() -> None:
    view = dialect_view(
        "anthropic",
        '"system": "SYS", "tools": [{"name": "t", "description": "DESC"}], "messages": ['
        '{"role": "user", "content": "USER"},'
        '{"role": "assistant", "content": [{"type": "tool_use", "id": "1", "name": "t",'
        ' "input": {"a": "ARGS"}}]},'
        '{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1",'
        ' "content": "RESULT"}]}]',
    )
    for text in ("SYS", "DESC", "USER", "ARGS", "RESULT"):
        assert text in view["model_text"]
    assert view["model_text"].count("RESULT") == 1
    openai_tool = dialect_view(
        "chat", '"messages": [{"role": "tool", "tool_call_id": "1", "content": "RESULT"}]'
    )
    assert openai_tool["model_text"] == "RESULT"  # a tool message: in once, not twice


def test_errors_are_bounded() -> None:
    messages = [{"role": f"r{i}", "content": "x"} for i in range(50)]
    view = dialect_view("chat", '"messages": ' + json.dumps(messages))
    assert view["error"].count("unknown role") == llm_module.MAX_ERRORS
    assert view["error"].endswith("; 40 more problems")


def test_not_an_llm_call_conforms() -> None:
    assert conformance(llm_module.NOT_LLM, llm_module.TYPE) == []
    assert llm_module.NOT_LLM["max_tokens"] is None and llm_module.NOT_LLM["model"] is None


def test_fields_are_the_declared_type_names() -> None:
    assert llm_module.TYPE.field_names == llm_module.FIELDS
    assert set(dialect_view("chat", "")) == set(llm_module.FIELDS)


# ---- policies over the strict view, on both engines ---------------------------------------

POLICY = """
policies:
  - name: p
    rules:
      - name: unreadable
        when: llm.error != ""
        effect: deny
        status: 400
      - name: cap
        when: llm.max_tokens != null && llm.max_tokens > 2048
        effect: deny
      - name: leak
        when: secrets(llm.model_text).size() > 0
        effect: deny
      - {name: ok, when: "true", effect: allow}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cap_and_a_scan_cannot_be_bypassed(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY, engine)

    def rule(path: str, text: str, headers: dict[str, str] | None = None) -> str:
        request = {
            "method": "POST",
            "path": path,
            "body": text,
            "headers": headers or {},
            "context": {"policy": "p"},
        }
        decision = decide_request(config, request)
        return decision.rule

    assert rule("/v1/chat/completions", body_text("chat", "")) == "ok"
    for fragment in ('"max_tokens": 4096.0', '"max_tokens": 1e4'):
        assert rule("/v1/chat/completions", body_text("chat", fragment)) == "cap"
    for fragment in ('"max_tokens": "4096"', '"max_tokens": 9223372036854775808'):
        assert rule("/v1/chat/completions", body_text("chat", fragment)) == "unreadable"
    assert rule("/v1/messages", body_text("anthropic", '"max_tokens": 8192.0'), ANTHROPIC) == "cap"
    gemini = body_text("gemini", '"generationConfig": {"maxOutputTokens": "8192"}')
    assert rule(GEMINI, gemini) == "cap"
    for _, dialect, members, _ in READ_BY_THE_MODEL:
        assert rule(*with_members(dialect, members)) == "leak"


# ---- any body of a dialect's vocabulary: never raises, always the declared type ------------

WORDS = [
    "model", "messages", "role", "content", "type", "text", "tool_calls", "function",
    "arguments", "name", "input", "tools", "description", "parameters", "max_tokens",
    "max_completion_tokens", "max_output_tokens", "stream", "temperature", "contents", "parts",
    "functionCall", "function_call", "args", "functionResponse", "response", "inlineData",
    "mimeType", "data", "generationConfig", "maxOutputTokens", "max_output_tokens",
    "functionDeclarations", "system", "systemInstruction", "instructions", "source", "document",
    "file_data", "input_file", "file", "tool_use", "tool_result", "output", "custom",
    "custom_tool_call_output", "function_call_output", "media_type", "prompt", "variables",
    "user", "assistant", "User", "text/plain", "base64", "data:text/plain;base64,aGk=",
]  # fmt: skip
VOCABULARY = st.sampled_from(WORDS)
SHAPED = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | VOCABULARY
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(VOCABULARY, children, max_size=5)
    ),
    max_leaves=40,
)
PATHS = st.sampled_from(
    [path for path, _, _ in DIALECTS.values()]
    + ["/v1beta/models/g%3AstreamGenerateContent", "/x", "/v1/messages"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=PATHS, body=st.dictionaries(VOCABULARY, SHAPED, max_size=8))
def test_any_body_gives_a_view_of_the_declared_type(path: str, body: dict[str, Any]) -> None:
    view = llm_module.llm_view(path, ANTHROPIC, body, None).as_cel()
    assert conformance(view, llm_module.TYPE) == []
    # What the JSON parser gives (ints past int64 as doubles) goes through the whole path too.
    text = json.dumps(body, allow_nan=False) if _finite(body) else None
    if text is not None and "\\u0000" not in text and "\0" not in text:
        assert conformance(view_of(path, text, ANTHROPIC), llm_module.TYPE) == []


def _finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


# ---- the conformance check ---------------------------------------------------------------


def conformance(value: Any, declared: CelType) -> list[str]:
    """Where the view differs from its declared type ([] when it does not): ints are int and
    not bool, doubles float, null only where nullable, lists and records element by element."""
    problem = mismatch(value, declared, "llm")
    return [problem] if problem else []


def test_the_conformance_check_catches_mismatches() -> None:
    good = dialect_view("chat", "")
    assert conformance(good, llm_module.TYPE) == []
    for field, wrong in [
        ("max_tokens", True),
        ("max_tokens", 4096.0),
        ("max_tokens", 2**63),
        ("temperature", 1),
        ("stream", "true"),
        ("error", None),
        ("messages", [{"role": "user", "text": 5}]),
        ("tool_calls", [{"name": "f"}]),
    ]:
        assert conformance({**good, field: wrong}, llm_module.TYPE) != [], (field, wrong)
    assert conformance({**good, "extra": 1}, llm_module.TYPE) != []
