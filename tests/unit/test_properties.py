"""Property tests (hypothesis): whatever a CheckRequest, body, text or policy input holds,
the path from CheckRequest to decision never raises and never allows by accident."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz import detectors
from authz.body import parse_json
from authz.config.model import Limits
from authz.llm import llm_view
from authz.mcp import mcp_view
from authz.policy.compiler import CompiledConfig
from authz.service import check
from tests.support.fuzzing import POLICY, check_request
from tests.unit.helpers import compile_policy

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@pytest.fixture(scope="module", params=["cel-cpp", "cel-python"])
def config(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> CompiledConfig:
    """The property policy on each engine."""
    return compile_policy(tmp_path_factory.mktemp("p"), POLICY, request.param)


@FAST
@given(
    path=st.one_of(st.text(max_size=40), st.just("/v1/chat/completions"), st.just("/v1/x")),
    headers=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=30), max_size=6),
    body=st.one_of(st.binary(max_size=300), JSON.map(lambda v: str(v).encode())),
    context=st.dictionaries(st.sampled_from(["policy", "x"]), st.text(max_size=8), max_size=2),
)
def test_any_check_request_ends_in_a_decision(
    config: CompiledConfig, path: str, headers: dict[str, str], body: bytes, context: dict[str, str]
) -> None:
    decision = check(config, check_request(path, headers, body, context))
    assert decision.message and decision.decision_id
    if decision.allowed:  # only the member rule allows, and only for the ml team
        assert decision.rule == "member"
        assert {k.lower(): v for k, v in headers.items()}.get("x-team") == "ml"
    assert decision.reason != "internal_error"


@FAST
@given(raw=st.binary(max_size=2000))
def test_json_parsing_never_raises(raw: bytes) -> None:
    parsed = parse_json(raw, Limits())
    assert (parsed.value is None) == (parsed.error is not None) or not raw


@FAST
@given(
    body=JSON,
    path=st.sampled_from(
        [
            "/v1/chat/completions",
            "/v1/messages",
            "/v1/responses",
            "/v1beta/models/g:generateContent",
            "/x",
        ]
    ),
)
def test_views_never_raise(body: object, path: str) -> None:
    view = llm_view(path, {}, body, None).as_cel()
    assert isinstance(view["error"], str) and isinstance(view["prompt_text"], str)
    mcp = mcp_view("POST", {}, body)
    assert isinstance(mcp["calls"], list) and isinstance(mcp["error"], str)


@FAST
@given(text=st.text(max_size=500))
def test_detectors_never_raise_and_redact_removes_findings(text: str) -> None:
    secrets = detectors.kinds(detectors.secret_findings(text))
    pii = detectors.kinds(detectors.pii_findings(text))
    detectors.injection_signals(text)
    redacted = detectors.redact(text)
    if not secrets and not pii:
        assert redacted == text
