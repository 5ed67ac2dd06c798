"""The `llm` attribute: an LLM API request as policies see it, whatever the provider's dialect.

Recognised: OpenAI chat/completions, completions, responses and embeddings; Anthropic
messages; Gemini generateContent / streamGenerateContent. Content given as a string or as
a list of parts both work. Never raises: a body of the wrong shape gives a partial view with
`error` saying what was skipped.

Views never coerce. A scalar field holds the value the provider would act on, or null with
an `error` entry naming the field as the body spells it (`max_tokens: not an integer`):

- integer fields take an integral JSON number (`4096.0` and `1e4` are 4096 and 10000); a
  string, bool, list, object or fraction is `not an integer`, a value past int64 (the JSON
  parser keeps such numbers as doubles) or past Gemini's int32 is `out of range`, and a
  value below 1 is `less than 1` (providers refuse it; llama.cpp reads -1 as "no limit").
  Gemini parses JSON as proto3 does, which takes an integer in a string: there `"8192"` is
  8192 (and `"0.5"` a temperature). When OpenAI's `max_tokens` and `max_completion_tokens`
  are both sent, `max_tokens` is the larger (the second replaces the first at OpenAI;
  compatible servers differ, so a cap judges the worst case).
- absent or JSON null is what the provider does then: `stream` false, the others null.
- roles are matched as the providers match them, case-sensitively: `User` is recorded as
  sent, with `messages[0].role: unknown role 'User'` (the provider would refuse the call).
  Gemini's `model` reads as `assistant` and a missing Gemini role as `user`.

Text the model reads is in the view: message content (documents and base64 text files
decoded), tool call arguments (`tool_calls`), tool results, tool descriptions and schemas,
instructions; `model_text` joins all of it for one detector call.

The package, one module a concern: `view` (the value and its declared `TYPE`), `fields`
(strict scalar readers), `text` (content parts, files), `tools`, one module per dialect
(`openai`, `anthropic`, `gemini`) and `dialect` (which one a request speaks).
"""

from __future__ import annotations

from authz.llm.dialect import llm_view
from authz.llm.view import (
    FIELDS,
    MAX_ERRORS,
    MESSAGE,
    MESSAGE_OVERHEAD,
    NOT_LLM,
    TOOL_CALL,
    TYPE,
    LlmView,
)

__all__ = [
    "FIELDS",
    "MAX_ERRORS",
    "MESSAGE",
    "MESSAGE_OVERHEAD",
    "NOT_LLM",
    "TOOL_CALL",
    "TYPE",
    "LlmView",
    "llm_view",
]
