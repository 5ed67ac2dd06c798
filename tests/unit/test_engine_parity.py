"""The two CEL engines give the same answer for the idioms policies are written in.

Each case is evaluated on cel-cpp and cel-python against the same attributes; the expected
value is stated once, so a divergence on either side fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from authz.errors import EvaluationError
from authz.policy.engine import make_engine
from authz.schema import ROOTS

ERROR = object()

VARS: dict[str, Any] = {
    "request": {
        "path": "/v1/chat",
        "method": "POST",
        "headers": {"x-team": "ml"},
        "query": {"a": ["1", "2"]},
        "size": 12,
        "path_segments": ["v1", "chat"],
    },
    "body": {
        "json": {"marker": "x", "n": 5, "f": 2.5, "items": [1, 2, 3], "nested": {"k": None}},
        "text": "hello TOP-SECRET",
        "size": 16,
        "error": None,
    },
    "context": {"policy": "chat"},
    "identity": {"authenticated": False, "groups": ["a", "b"]},
}
NULL_BODY: dict[str, Any] = {**VARS, "body": {"json": None, "error": "invalid JSON", "size": 3}}

CASES: list[tuple[str, dict[str, Any], Any]] = [
    # null checks on a map and on null (cel-python alone raised "no such overload" here)
    ("body.json != null", VARS, True),
    ("body.json == null", VARS, False),
    ("body.json == null", NULL_BODY, True),
    ("body.json != null && body.json.marker == 'x'", NULL_BODY, False),
    ("body.json.nested.k == null", VARS, True),
    ("body.error == null", VARS, True),
    # heterogeneous equality is false, not an error
    ("request.path == 1", VARS, False),
    ("request.size == '12'", VARS, False),
    ("body.json.items == [1, 2, 3]", VARS, True),
    ("body.json.n == 5.0", VARS, True),
    ("body.json.f > 2", VARS, True),
    ("body.json.f > 2.0", VARS, True),
    ("body.json.n < 5.5", VARS, True),
    ("2.5 > body.json.n", VARS, False),
    ("body.json.n in [5.0]", VARS, True),
    ("request.path < 1", VARS, ERROR),
    # membership and presence
    ("'x-team' in request.headers", VARS, True),
    ("'x-other' in request.headers", VARS, False),
    ("has(body.json.marker)", VARS, True),
    ("has(body.json.missing)", VARS, False),
    ("'a' in identity.groups", VARS, True),
    ("request.query['a'][1] == '2'", VARS, True),
    # strings
    ("body.text.contains('TOP-SECRET')", VARS, True),
    ("request.path.startsWith('/v1/') && request.path.endsWith('chat')", VARS, True),
    ("request.path.matches('^/v1/[a-z]+$')", VARS, True),
    ("size(request.path_segments) == 2", VARS, True),
    # macros
    ("body.json.items.all(i, i > 0)", VARS, True),
    ("body.json.items.exists(i, i == 3)", VARS, True),
    ("body.json.items.filter(i, i > 1).size() == 2", VARS, True),
    ("body.json.items.map(i, i * 2)[2] == 6", VARS, True),
    # errors: missing keys, bad arithmetic
    ("request.headers['missing'] == 'x'", VARS, ERROR),
    ("body.json.marker == 'x'", NULL_BODY, ERROR),
    ("1 / 0 == 1", VARS, ERROR),
    # logic absorbs errors the way CEL says
    ("true || request.headers['missing'] == 'x'", VARS, True),
    ("request.headers['missing'] == 'x' || true", VARS, True),
    ("false && request.headers['missing'] == 'x'", VARS, False),
    ("context.policy == 'chat' ? 'yes' : 'no'", VARS, "yes"),
]


def run(engine_name: str, source: str, variables: dict[str, Any]) -> Any:
    """Compile and evaluate, mapping an evaluation error to ERROR."""
    engine = make_engine(engine_name, sorted(ROOTS))
    program = engine.compile(source)
    try:
        return program.evaluate(engine.bind(variables))
    except EvaluationError:
        return ERROR


@pytest.mark.parametrize(("source", "variables", "expected"), CASES, ids=[c[0] for c in CASES])
def test_both_engines_agree(source: str, variables: dict[str, Any], expected: Any) -> None:
    cpp = run("cel-cpp", source, variables)
    py = run("cel-python", source, variables)
    assert cpp is expected if expected is ERROR else cpp == expected
    assert py is expected if expected is ERROR else py == expected
