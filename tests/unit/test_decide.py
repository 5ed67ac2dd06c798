"""Policy evaluation on both engines: first match, selection, outputs, and fail-closed paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authz.decision import (
    DEFAULT,
    EVALUATION_ERROR,
    INVALID_OUTPUT,
    NO_POLICY,
    RULE,
    UNKNOWN_POLICY,
)
from authz.policy.compiler import CompiledConfig
from authz.response import deny_body, to_check_response
from tests.unit.helpers import ENGINES, compile_policy, decide_request

POLICY = """
policies:
  - name: chat
    match: request.path.startsWith("/v1/chat/")
    default: deny
    rules:
      - name: block-marker
        when: body.json != null && "marker" in body.json && body.json.marker == "forbidden"
        effect: deny
        status: 422
        message: marker not allowed
      - name: bad-json
        when: body.size > 0 && body.json == null
        effect: deny
        status: 400
        message: body must be JSON
      - name: members
        when: '"x-team" in request.headers && request.headers["x-team"] == "ml"'
        effect: allow
        headers: {x-authz-team: 'request.headers["x-team"]'}
        remove_headers: [x-internal]
        response_headers: {x-served-by: '"authz"'}
        metadata: {tenant: '"ml"', size: body.size}
  - name: routed
    rules:
      - name: needs-header
        when: request.headers["x-required"] == "yes"
        effect: allow
      - name: query
        when: '"debug" in request.query && request.query["debug"][0] == "1"'
        effect: allow
  - name: open
    default: allow
    rules:
      - name: no-delete
        when: request.method == "DELETE"
        effect: deny
  - name: outputs
    rules:
      - name: crlf
        when: request.path == "/crlf"
        effect: allow
        headers: {x-echo: 'request.query["in"][0]'}
      - name: list-header
        when: request.path == "/list"
        effect: allow
        headers: {x-list: body.json}          # dyn: checked when the request comes
      - name: not-bool
        when: body.json                       # dyn: null is not a bool at run time
        effect: allow
"""


@pytest.fixture(params=ENGINES)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> CompiledConfig:
    """The test policy compiled on each engine."""
    return compile_policy(tmp_path, POLICY, request.param)


def chat(body: object = None, **headers: str) -> dict:
    """A chat request selected by the `match` expression."""
    return {"method": "POST", "path": "/v1/chat/completions", "headers": headers, "body": body}


def test_allow_carries_headers_metadata_and_removals(config: CompiledConfig) -> None:
    decision = decide_request(config, chat({"q": 1}, **{"x-team": "ml"}))
    assert decision.allowed and decision.reason == RULE
    assert (decision.policy, decision.rule) == ("chat", "members")
    assert dict(decision.headers) == {"x-authz-team": "ml"}
    assert decision.remove_headers == ("x-internal",)
    assert dict(decision.response_headers) == {"x-served-by": "authz"}
    assert decision.metadata == {"tenant": "ml", "size": len(json.dumps({"q": 1}))}


def test_first_match_decides(config: CompiledConfig) -> None:
    decision = decide_request(config, chat({"marker": "forbidden"}, **{"x-team": "ml"}))
    assert not decision.allowed
    assert (decision.rule, decision.status) == ("block-marker", 422)
    body = json.loads(deny_body(decision))
    assert body == {"error": "marker not allowed", "decision_id": decision.decision_id}


def test_malformed_json_gives_null_json_and_the_policy_answers(config: CompiledConfig) -> None:
    decision = decide_request(config, chat("{not json", **{"x-team": "ml"}))
    assert (decision.allowed, decision.rule, decision.status) == (False, "bad-json", 400)


def test_no_rule_matched_is_the_policy_default(config: CompiledConfig) -> None:
    decision = decide_request(config, chat({"q": 1}))
    assert (decision.allowed, decision.reason, decision.status) == (False, DEFAULT, 403)
    assert "default deny" in decision.message
    opened = decide_request(config, {"path": "/x", "context": {"policy": "open"}})
    assert opened.allowed and opened.reason == DEFAULT
    deleted = decide_request(config, {"method": "DELETE", "context": {"policy": "open"}})
    assert not deleted.allowed and deleted.rule == "no-delete"


def test_route_context_selects_the_policy(config: CompiledConfig) -> None:
    request = {
        "path": "/v1/chat/x",
        "headers": {"x-required": "yes"},
        "context": {"policy": "routed"},
    }
    decision = decide_request(config, request)
    assert (decision.allowed, decision.policy, decision.rule) == (True, "routed", "needs-header")


def test_query_is_a_map_of_lists(config: CompiledConfig) -> None:
    # needs-header errors first (no such header): the error denies before `query` is reached.
    request = {
        "path": "/r?debug=1&debug=2",
        "headers": {"x-required": "no"},
        "context": {"policy": "routed"},
    }
    decision = decide_request(config, request)
    assert (decision.allowed, decision.rule) == (True, "query")


def test_unknown_route_policy_denies(config: CompiledConfig) -> None:
    decision = decide_request(config, {"context": {"policy": "nope"}})
    assert (decision.allowed, decision.reason) == (False, UNKNOWN_POLICY)


def test_no_policy_selected_denies(config: CompiledConfig) -> None:
    decision = decide_request(config, {"path": "/elsewhere"})
    assert (decision.allowed, decision.reason, decision.status) == (False, NO_POLICY, 403)


def test_cel_runtime_error_denies_with_reason(config: CompiledConfig) -> None:
    decision = decide_request(config, {"path": "/x", "context": {"policy": "routed"}})
    assert (decision.allowed, decision.reason, decision.rule) == (
        False,
        EVALUATION_ERROR,
        "needs-header",
    )
    assert "needs-header" in decision.message


def test_header_value_with_crlf_is_refused(config: CompiledConfig) -> None:
    # a query parameter decodes to CR LF; copied into a header, it must be refused
    request = {"path": "/crlf?in=a%0d%0ax-evil:%201", "context": {"policy": "outputs"}}
    decision = decide_request(config, request)
    assert (decision.allowed, decision.reason) == (False, INVALID_OUTPUT)


def test_non_string_header_value_is_refused(config: CompiledConfig) -> None:
    decision = decide_request(config, {"path": "/list", "context": {"policy": "outputs"}})
    assert (decision.allowed, decision.reason) == (False, INVALID_OUTPUT)


def test_non_bool_condition_denies(config: CompiledConfig) -> None:
    decision = decide_request(config, {"path": "/other", "context": {"policy": "outputs"}})
    assert (decision.allowed, decision.reason, decision.rule) == (
        False,
        EVALUATION_ERROR,
        "not-bool",
    )


def test_every_response_carries_a_decision_id(config: CompiledConfig) -> None:
    for request in (chat({"q": 1}, **{"x-team": "ml"}), {"path": "/elsewhere"}):
        decision = decide_request(config, request)
        response = to_check_response(decision)
        assert response.dynamic_metadata["decision_id"] == decision.decision_id
        assert len(decision.decision_id) == 32


def test_deny_response_shape(config: CompiledConfig) -> None:
    decision = decide_request(config, chat({"marker": "forbidden"}))
    response = to_check_response(decision)
    assert response.status.code == 7
    assert response.denied_response.status.code == 422
    headers = {h.header.key: h.header.value for h in response.denied_response.headers}
    assert headers["content-type"] == "application/json"
    assert json.loads(response.denied_response.body)["error"] == "marker not allowed"
    assert response.dynamic_metadata["rule"] == "block-marker"


REQUESTS = [
    chat({"q": 1}, **{"x-team": "ml"}),
    chat({"marker": "forbidden"}),
    chat("{oops"),
    chat({"q": 1}),
    {"path": "/x", "context": {"policy": "routed"}},
    {"path": "/r?debug=1", "headers": {"x-required": "no"}, "context": {"policy": "routed"}},
    {"context": {"policy": "nope"}},
    {"path": "/elsewhere"},
    {"method": "DELETE", "context": {"policy": "open"}},
    {"path": "/crlf?in=ok", "context": {"policy": "outputs"}},
]


def test_engines_decide_the_same(tmp_path: Path) -> None:
    cpp = compile_policy(tmp_path, POLICY, "cel-cpp")
    py = compile_policy(tmp_path, POLICY, "cel-python")
    for request in REQUESTS:
        a, b = decide_request(cpp, request), decide_request(py, request)
        summary_a = (a.allowed, a.reason, a.status, a.policy, a.rule, a.headers, a.metadata)
        summary_b = (b.allowed, b.reason, b.status, b.policy, b.rule, b.headers, b.metadata)
        assert summary_a == summary_b, request


TWO_VIEWS = """
policies:
  - name: chat
    rules: [{name: model, when: 'llm.model == "m"', effect: allow}]
  - name: tools
    rules: [{name: tool, when: 'mcp.tool == "t"', effect: allow}]
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_routed_policy_builds_only_the_views_it_reads(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request routed to `chat` never builds the MCP view another policy reads."""
    config = compile_policy(tmp_path, TWO_VIEWS, engine)

    def no_mcp(*_: object) -> None:
        raise AssertionError("the MCP view was built for a chat route")

    monkeypatch.setattr("authz.attributes.mcp_view", no_mcp)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    chat = {"method": "POST", "path": "/v1/chat/completions", "body": body}
    decision = decide_request(config, {**chat, "context": {"policy": "chat"}})
    assert decision.allowed and decision.rule == "model"
