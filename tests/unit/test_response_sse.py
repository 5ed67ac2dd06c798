"""Event streams judged as they pass: parsing at any chunk boundary, the bounded hold-back
that keeps a secret split across events from reaching the client in part, cuts, and
redaction across events, in each streaming dialect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz.config.model import Limits
from authz.detectors import redact
from authz.policy.compiler import CompiledConfig, load
from authz.response_path.events import EventParser, Unreadable
from authz.response_path.judge import judge
from authz.response_path.sse import StreamJudge
from tests.unit.helpers import ENGINES, compile_policy

KEY = "AKIA" + "Q7ZXW3RT5YU8IOPL"  # format-valid, not a real key
POLICY = """
policies:
  - name: chat
    default: allow
    rules: []
    {mode}
    response_rules:
      - name: no-credentials
        when: secrets(response.llm.text).size() > 0
        effect: deny
        message: withheld
      - name: personal-data
        when: pii(response.llm.text).size() > 0
        effect: redact
      - name: tool-error
        when: response.mcp.is_error
        effect: deny
"""


@pytest.fixture(params=ENGINES)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> CompiledConfig:
    return compile_policy(tmp_path, POLICY.format(mode=""), request.param)


@pytest.fixture(scope="module")
def redacting(tmp_path_factory: pytest.TempPathFactory) -> CompiledConfig:
    """A policy that redacts whatever holds a secret or personal data."""
    path = tmp_path_factory.mktemp("redacting") / "policy.yaml"
    when = "pii(response.llm.text).size() > 0 || secrets(response.llm.text).size() > 0"
    path.write_text(
        "policies:\n  - name: p\n    default: allow\n    rules: []\n    response_rules:\n"
        f"      - {{name: r, when: '{when}', effect: redact}}\n"
    )
    return load(str(path), "cel-cpp")


def stream(config: CompiledConfig, hold: int = 64) -> StreamJudge:
    policy = config.policies[0]
    rules = policy.response
    assert rules is not None

    def run(response: dict[str, Any]) -> Any:
        return judge(config, policy, response, "id-1")

    return StreamJudge(run, rules.fields, 200, {}, Limits(max_body_bytes=4096), hold)


def openai(text: str) -> bytes:
    data = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }
    return f"data: {json.dumps(data)}\n\n".encode()


def anthropic(text: str) -> bytes:
    data = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }
    return f"event: content_block_delta\ndata: {json.dumps(data)}\n\n".encode()


def responses(text: str) -> bytes:
    data = {"type": "response.output_text.delta", "item_id": "m1", "delta": text}
    return f"event: response.output_text.delta\ndata: {json.dumps(data)}\n\n".encode()


def gemini(text: str) -> bytes:
    data = {"candidates": [{"content": {"parts": [{"text": text}]}}]}
    return f"data: {json.dumps(data)}\n\n".encode()


def plain(text: str) -> bytes:
    return f"data: {text}\n\n".encode()


DIALECTS = [openai, anthropic, responses, gemini, plain]


def feed_all(judge_: StreamJudge, chunks: list[bytes]) -> tuple[bytes, Any]:
    """Every chunk, then the end; what was released and the cut (if any)."""
    released, cut = b"", None
    for index, piece in enumerate([*chunks, b""]):
        step = judge_.feed(piece, end=index == len(chunks))
        released += step.release
        cut = cut or step.cut
    return released, cut


def test_events_are_found_at_every_chunk_boundary() -> None:
    text = b": comment\r\nevent: a\r\ndata: one\r\ndata: two\r\n\r\ndata: three\n\ndata: four\r\r"
    for cut in range(1, len(text)):
        parser = EventParser(1024)
        events = parser.feed(text[:cut], False) + parser.feed(text[cut:], True)
        assert [e.data for e in events] == ["one\ntwo", "three", "four"], cut
        assert b"".join(e.raw for e in events) == text


def test_a_last_event_without_its_blank_line_counts_at_the_end() -> None:
    parser = EventParser(1024)
    assert parser.feed(b"data: x\n", False) == []
    (event,) = parser.feed(b"", True)
    assert event.data == "x"


def test_an_event_too_large_is_unreadable() -> None:
    with pytest.raises(Unreadable):
        EventParser(64).feed(b"data: " + b"x" * 100, False)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("split", [1, 4, 9, 15, 19])
def test_a_credential_split_across_events_never_reaches_the_client(
    config: CompiledConfig, dialect: Any, split: int
) -> None:
    judge_ = stream(config)
    intro = [dialect("All good so far. ") for _ in range(8)]
    chunks = [
        *intro,
        dialect("the key is " + KEY[:split]),
        dialect(KEY[split:] + " ok"),
        dialect("more"),
    ]
    released, cut = feed_all(judge_, chunks)
    assert cut is not None and cut.rule == "no-credentials"
    assert b"All good so far" in released  # what came before passed
    for part in (KEY[:split], KEY[split:]):
        if len(part) >= 3:
            assert part.encode() not in released
    assert b"the key is" not in released and b"more" not in released


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.__name__)
def test_text_passes_as_it_comes_except_the_bounded_hold_back(
    config: CompiledConfig, dialect: Any
) -> None:
    judge_ = stream(config, hold=64)
    released = b""
    for index in range(20):
        released += judge_.feed(dialect(f"sentence {index:02d} is clean. "), False).release
        # everything but about the last 64 characters of text is out
        assert b"sentence %02d" % max(index - 4, 0) in released or index < 4
    assert judge_.held_max <= 64 + len("sentence 00 is clean. ")
    released += judge_.feed(b"", True).release
    for index in range(20):
        assert b"sentence %02d" % index in released


def test_an_email_split_across_events_is_redacted_in_place(config: CompiledConfig) -> None:
    judge_ = stream(config)
    released, cut = feed_all(judge_, [openai("write to jane.do"), openai("e@example.com today")])
    assert cut is None
    events = [json.loads(e[6:]) for e in released.decode().split("\n\n") if e]
    texts = [e["choices"][0]["delta"]["content"] for e in events]
    assert texts == ["write to [EMAIL]", " today"]
    assert judge_.decision is not None and judge_.decision.effect == "redact"


def test_a_stream_without_answer_text_holds_nothing_back(config: CompiledConfig) -> None:
    judge_ = stream(config)
    message = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "x"}]}}
    event = f"event: message\ndata: {json.dumps(message)}\n\n".encode()
    assert judge_.feed(event, False).release == event  # an MCP result goes at once
    failed = {"jsonrpc": "2.0", "id": 2, "result": {"content": [], "isError": True}}
    step = judge_.feed(f"data: {json.dumps(failed)}\n\n".encode(), False)
    assert step.cut is not None and step.cut.rule == "tool-error"
    assert judge_.feed(event, True).release == b""  # nothing after a cut


def test_bad_json_in_an_event_is_unreadable(config: CompiledConfig) -> None:
    with pytest.raises(Unreadable):
        stream(config).feed(b"data: {not json}\n\n", False)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dry_run_stream_passes_unchanged(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY.format(mode="mode: dry-run"), engine)
    judge_ = stream(config)
    chunks = [openai("the key is " + KEY[:6]), openai(KEY[6:]), openai("write to a@example.com")]
    released, cut = feed_all(judge_, chunks)
    assert cut is None and released == b"".join(chunks)
    decision = judge_.decision
    assert decision is not None and decision.effect == "allow"
    assert decision.would is not None and decision.would.rule == "no-credentials"


WORDS = [
    "hello",
    "jane.doe@example.com",
    KEY,
    "call",
    "+1 415 555 0132",
    "ok",
    "4111 1111 1111 1111",
    "bob@x.org",
    " ",
    "\n",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=2000), max_size=12),
)
def test_a_redacted_stream_reads_as_the_whole_text_redacted(
    redacting: CompiledConfig, words: list[str], cuts: list[int]
) -> None:
    """However the text is split into events, what the client reads is redact(text): each
    finding is judged with the text that follows it (nothing cut short, nothing missed)."""
    text = " ".join(words)
    points = sorted({c % len(text) for c in cuts if c % len(text)})
    parts = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    judge_ = stream(redacting, hold=256)
    released, cut = feed_all(judge_, [openai(p) for p in parts])
    assert cut is None
    events = [json.loads(e[6:]) for e in released.decode().split("\n\n") if e]
    assert "".join(e["choices"][0]["delta"]["content"] for e in events) == redact(text)
