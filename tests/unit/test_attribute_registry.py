"""The attribute registry is the contract: whatever a request holds, every attribute root
the service builds has exactly the declared type (a view never hands a policy a value of
another type, which a type-checked policy would then misjudge)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz.attributes import from_check_request
from authz.celtypes import mismatch
from authz.config.model import Limits
from authz.errors import RequestError
from authz.identity.model import Identity
from authz.request_file import to_check_request
from authz.schema import ROOT_TYPES

EVERYTHING = frozenset((root, None) for root in ROOT_TYPES if root != "data")
PATHS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/messages",
    "/v1beta/models/gemini-pro:generateContent",
    "/v1beta/models/gemini-pro%3AstreamGenerateContent",
    "/mcp",
    "/other",
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "text",
                    "type",
                    "model",
                    "max_tokens",
                    "stream",
                    "max_completion_tokens",
                    "temperature",
                    "tool_calls",
                    "function",
                    "arguments",
                    "name",
                    "input",
                    "jsonrpc",
                    "method",
                    "id",
                    "params",
                    "parts",
                    "contents",
                    "generationConfig",
                    "maxOutputTokens",
                    "tools",
                    "description",
                    "source",
                    "data",
                    "instructions",
                    "output",
                    "system",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=40,
)
BODIES = (
    st.fixed_dictionaries(
        {"model": SCALARS, "messages": st.lists(JSON, max_size=3)},
        optional={"max_tokens": SCALARS, "stream": SCALARS, "jsonrpc": st.just("2.0")},
    )
    | JSON
)


def _roots(path: str, body: Any, method: str = "POST") -> dict[str, Any]:
    request = to_check_request(
        {"method": method, "path": path, "body": json.dumps(body), "headers": {"x": "1"}}
    )
    attrs = from_check_request(request, Limits()).with_identity(
        Identity(True, "jwt", "alice", "iss", ("aud",), ("ml",), ("read",), {"tier": "gold"})
    )
    return attrs.variables(EVERYTHING)


def _problems(roots: dict[str, Any]) -> list[str]:
    return [p for name, value in roots.items() if (p := mismatch(value, ROOT_TYPES[name], name))]


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(path=st.sampled_from(PATHS), body=BODIES)
def test_every_root_has_its_declared_type_whatever_the_body(path: str, body: Any) -> None:
    try:
        roots = _roots(path, body)
    except RequestError:
        return  # refused outright (a NUL, a lone surrogate): nothing reaches a policy
    assert _problems(roots) == []


def test_hostile_llm_values_keep_their_declared_types() -> None:
    bodies = [
        {
            "model": 5,
            "max_tokens": "4096",
            "stream": "true",
            "temperature": "hot",
            "messages": [{"role": 1, "content": {"x": [1]}}],
        },
        {"model": "m", "max_tokens": 1e30, "stream": 1, "messages": "hi"},
        {"model": None, "max_tokens": 4096.0, "messages": [None, 3, []]},
    ]
    for path in PATHS:
        for body in bodies:
            assert _problems(_roots(path, body)) == [], (path, body)


def test_mismatch_catches_what_a_view_must_never_do() -> None:
    # the checker's own guard: a coerced or missing field is reported
    llm = ROOT_TYPES["llm"]
    good = _roots("/v1/chat/completions", {"model": "m", "messages": []})["llm"]
    assert mismatch(good, llm, "llm") == ""
    assert "llm.max_tokens" in mismatch({**good, "max_tokens": "4096"}, llm, "llm")
    assert "llm.stream" in mismatch({**good, "stream": 1}, llm, "llm")
    assert "fields" in mismatch({k: v for k, v in good.items() if k != "model"}, llm, "llm")
