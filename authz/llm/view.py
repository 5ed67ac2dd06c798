"""The `llm` view's value and its declared type: what one LLM call asks for, as policies see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authz.celtypes import BOOL, DOUBLE, INT, STRING, list_of, nullable, record
from authz.tokens import count as count_tokens

MAX_MESSAGES = 1000
MAX_TEXT_CHARS = 1 << 20
MAX_ERRORS = 10

# Tokens the chat format adds around each message (role markers), and once to prime the reply
# (OpenAI's published count for its chat models).
MESSAGE_OVERHEAD = 3

MESSAGE = record("llm message", role=STRING, text=STRING)
TOOL_CALL = record("llm tool call", name=STRING, arguments=STRING)

TYPE = record(
    "llm",
    provider=STRING,
    operation=STRING,
    model=nullable(STRING),
    stream=nullable(BOOL),
    max_tokens=nullable(INT),
    temperature=nullable(DOUBLE),
    messages=list_of(MESSAGE),
    system_text=STRING,
    prompt_text=STRING,
    tools=list_of(STRING),
    tool_results=list_of(STRING),
    tool_calls=list_of(TOOL_CALL),
    model_text=STRING,
    input_chars=INT,
    estimated_input_tokens=INT,
    error=STRING,
)

FIELDS = TYPE.field_names


@dataclass
class LlmView:
    """What an LLM call asks for; provider "" means the request is not an LLM call."""

    provider: str = ""
    operation: str = ""
    model: str | None = None
    stream: bool | None = False
    max_tokens: int | None = None
    temperature: float | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    system_text: str = ""
    tools: list[str] = field(default_factory=list)
    tool_results: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    # Text the model reads that is in neither a message nor system_text (tool descriptions,
    # call arguments, tool results outside messages): part of model_text.
    read: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    more_errors: set[str] = field(default_factory=set)

    def add(self, role: str, text: str) -> None:
        """Record one message (system text is also kept apart)."""
        if len(self.messages) >= MAX_MESSAGES:
            self.note(f"more than {MAX_MESSAGES} messages; the rest are not in the view")
            return
        self.messages.append({"role": role, "text": text})

    def result(self, text: str) -> None:
        """Record a tool result that is not a message of its own."""
        self.tool_results.append(text)
        self.read.append(text)

    def call(self, name: str, arguments: str) -> None:
        """Record a tool call the model made (its arguments are text the model reads)."""
        if len(self.tool_calls) >= MAX_MESSAGES:
            self.note(f"more than {MAX_MESSAGES} tool calls; the rest are not in the view")
            return
        self.tool_calls.append({"name": name, "arguments": arguments})
        self.read.append(arguments)

    def note(self, problem: str) -> None:
        """Record why the view is partial (once per problem, at most MAX_ERRORS of them)."""
        if problem in self.errors:
            return
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(problem)
        else:
            self.more_errors.add(problem)

    def as_cel(self, tokens: bool = False) -> dict[str, Any]:
        """The `llm` attribute; `estimated_input_tokens` is counted only when `tokens` (a
        loaded expression reads it), else 0."""
        prompt = "\n".join(m["text"] for m in self.messages if m["role"] == "user" and m["text"])
        system = "\n".join(
            [self.system_text] * bool(self.system_text)
            + [
                m["text"]
                for m in self.messages
                if m["role"] in ("system", "developer") and m["text"]
            ]
        )
        model_text = "\n".join(
            t for t in [self.system_text, *(m["text"] for m in self.messages), *self.read] if t
        )
        errors = self.errors + [f"{len(self.more_errors)} more problems"] * bool(self.more_errors)
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
            "tool_calls": self.tool_calls,
            "model_text": model_text,
            "input_chars": sum(len(m["text"]) for m in self.messages)
            + len(self.system_text)
            + sum(len(t) for t in self.tool_results),
            "estimated_input_tokens": self.input_tokens(model_text) if tokens else 0,
            "error": "; ".join(errors),
        }

    def input_tokens(self, model_text: str) -> int:
        """What the model reads, in cl100k_base tokens (authz/tokens.py), plus the chat
        format's overhead: MESSAGE_OVERHEAD per message and once for the reply."""
        if not self.provider:
            return 0
        return count_tokens(model_text) + MESSAGE_OVERHEAD * (len(self.messages) + 1)


NOT_LLM = LlmView().as_cel()
