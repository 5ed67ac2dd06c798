"""JSON bodies are bounded before they are parsed: nesting read from the text (strings
blanked), and a body of more values than MAX_JSON_VALUES is not parsed at all."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz import body
from authz.body import MAX_JSON_VALUES, parse_json
from authz.config.model import Limits


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max([_depth(v) for v in value.values()] or [0])
    if isinstance(value, list):
        return 1 + max([_depth(v) for v in value] or [0])
    return 0


def test_nesting_is_read_from_the_text_as_the_value_nests() -> None:
    rng = random.Random(3)

    def build(depth: int) -> object:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice([1, "a[{", 'x"]}\\', None, 2.5])
        if rng.random() < 0.5:
            return [build(depth - 1) for _ in range(rng.randint(0, 3))]
        return {f"k{i}]{{": build(depth - 1) for i in range(rng.randint(0, 3))}

    for _ in range(2000):
        value = build(rng.randint(0, 9))
        limit = rng.randint(1, 8)
        parsed = parse_json(json.dumps(value).encode(), Limits(max_json_depth=limit))
        deeper = parsed.error == f"JSON nested deeper than {limit}"
        assert deeper == (_depth(value) > limit), (value, limit)
        assert deeper or parsed.value == value


def test_too_many_values_are_not_parsed() -> None:
    limits = Limits()
    many = b"[" + b",".join(b"0" for _ in range(MAX_JSON_VALUES)) + b"]"
    parsed = parse_json(many, limits)
    assert parsed.value is None
    assert parsed.error == f"JSON of more than {MAX_JSON_VALUES} values; not parsed"
    fewer = b"[" + b",".join(b"0" for _ in range(MAX_JSON_VALUES - 2)) + b"]"
    assert parse_json(fewer, limits).value == [0] * (MAX_JSON_VALUES - 2)
    # commas and brackets inside strings are not values
    text = json.dumps({"prompt": "[a, b]{" * 40000})
    assert parse_json(text.encode(), limits).error is None


@settings(max_examples=1500, deadline=None)
@given(
    raw=st.lists(st.sampled_from(list(b'[]{},"\\ a:0')), max_size=200).map(bytes),
    limit=st.integers(0, 6),
    most=st.integers(1, 12),
)
def test_the_small_body_pass_answers_as_the_numpy_pass(raw: bytes, limit: int, most: int) -> None:
    """Bodies up to SMALL_BODY are bounded without numpy; the answer is the numpy pass's on
    any text (escaped quotes, runs of backslashes, unbalanced and invalid JSON included)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(body, "MAX_JSON_VALUES", most)
        assert body._bounds_small(raw, limit) == body._bounds_large(raw, limit)


def test_a_small_body_with_many_brackets_is_bounded_without_numpy() -> None:
    """A chat of many content parts (more than 64 brackets) is bounded and parsed without
    loading numpy (~15 MiB a worker)."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}] * 40
    script = (
        "import json, sys\n"
        "from authz.body import parse_json\n"
        "from authz.config.model import Limits\n"
        f"raw = json.dumps({{'messages': {messages!r}}}).encode()\n"
        "parsed = parse_json(raw, Limits())\n"
        "print(parsed.error, len(parsed.value['messages']), 'numpy' in sys.modules)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ran.stdout.split() == ["None", "40", "False"], ran.stderr
