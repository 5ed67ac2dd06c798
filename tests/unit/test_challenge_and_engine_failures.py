"""Every 401 carries a Bearer challenge; engine failures never speak for a rule.

Both on both engines: a rule's (or a default's) 401 gets the RFC 6750 challenge built from
`identity.error` unless the rule sets WWW-Authenticate itself; an exception inside an engine
becomes one fixed message, its text only in the service log; a lone surrogate in a body is
a request_parse_error before any engine sees it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from authz.decision import Decision, record
from authz.errors import EngineFailure, EvaluationError
from authz.functions import REQUEST_HANDLE, CelFunction, DetectorMemo, FunctionLibrary
from authz.policy.compiler import CompiledConfig
from authz.policy.engine import make_engine
from authz.response import to_check_response
from authz.schema import ROOTS
from tests.support import tokens
from tests.unit.helpers import ENGINES, compile_policy, decide_request

KEY = tokens.rsa_key("ch-1")

POLICY = f"""
identity:
  jwt: [{{issuer: "{tokens.ISSUER}", audiences: [{tokens.AUDIENCE}], jwks_file: jwks.json,
          algorithms: [RS256]}}]
cache: {{max_entries: 100, ttl_seconds: 60}}
policies:
  - name: gate
    rules:
      - {{name: needs-key, when: '!("x-key" in request.headers)', effect: deny, status: 401}}
      - name: own-challenge
        when: 'request.headers["x-key"] == "own"'
        effect: deny
        status: 401
        response_headers:
          www-authenticate: >-
            'ApiKey realm="x"'
      - name: own-challenge-in-headers
        when: 'request.headers["x-key"] == "hdr"'
        effect: deny
        status: 401
        headers:
          WWW-Authenticate: >-
            'Basic realm="y"'
      - {{name: forbidden, when: 'request.headers["x-key"] == "no"', effect: deny}}
      - {{name: ok, when: 'request.headers["x-key"] == "yes"', effect: allow}}
  - name: closed
    default_status: 401
    rules:
      - {{name: never, when: "false", effect: allow}}
"""


def challenge_of(decision: Decision) -> list[str]:
    """Every WWW-Authenticate value the client would receive with this deny."""
    response = to_check_response(decision)
    return [
        h.header.value
        for h in response.denied_response.headers
        if h.header.key.lower() == "www-authenticate"
    ]


@pytest.fixture(params=ENGINES)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> CompiledConfig:
    (tmp_path / "jwks.json").write_text(json.dumps(tokens.jwks(KEY)))
    return compile_policy(tmp_path, POLICY, request.param)


def ask(config: CompiledConfig, policy: str, **headers: str) -> Decision:
    return decide_request(config, {"path": "/x", "headers": headers, "context": {"policy": policy}})


def test_a_rule_401_gets_the_challenge_for_its_caller(config: CompiledConfig) -> None:
    nothing = ask(config, "gate")
    assert (nothing.status, nothing.rule) == (401, "needs-key")
    assert challenge_of(nothing) == [
        'Bearer realm="authz", error_description="missing_credentials"'
    ]
    expired = tokens.mint(KEY, exp=int(time.time()) - 3600)
    # the same cached decision, another caller: the challenge is this caller's
    stale = ask(config, "gate", authorization=f"Bearer {expired}")
    assert stale.rule == "needs-key"
    assert challenge_of(stale) == [
        'Bearer realm="authz", error="invalid_token", error_description="expired"'
    ]
    bare = ask(config, "gate", authorization=tokens.mint(KEY))
    assert challenge_of(bare) == [
        'Bearer realm="authz", error="invalid_token", error_description="malformed"'
    ]
    # authenticated, yet refused with 401: a challenge with nothing to say
    valid = ask(config, "gate", authorization=f"Bearer {tokens.mint(KEY)}")
    assert (valid.status, challenge_of(valid)) == (401, ['Bearer realm="authz"'])


def test_a_default_401_gets_the_challenge(config: CompiledConfig) -> None:
    decision = ask(config, "closed")
    assert (decision.status, decision.rule) == (401, None)
    assert challenge_of(decision) == [
        'Bearer realm="authz", error_description="missing_credentials"'
    ]


def test_a_rule_with_its_own_challenge_keeps_it(config: CompiledConfig) -> None:
    assert challenge_of(ask(config, "gate", **{"x-key": "own"})) == ['ApiKey realm="x"']
    assert challenge_of(ask(config, "gate", **{"x-key": "hdr"})) == ['Basic realm="y"']


def test_other_statuses_get_no_challenge(config: CompiledConfig) -> None:
    assert challenge_of(ask(config, "gate", **{"x-key": "no"})) == []
    allowed = ask(config, "gate", **{"x-key": "yes"})
    assert allowed.allowed and "www-authenticate" not in dict(allowed.response_headers)


# --- engine failures ---------------------------------------------------------------------

SURROGATE_POLICY = """
policies:
  - name: chat
    match: "true"
    rules:
      - name: team-header
        when: '"x-team" in request.headers && request.headers["x-team"] == "no"'
        effect: deny
      - name: big
        when: llm.max_tokens != null && llm.max_tokens > 100
        effect: deny
      - name: ok
        when: "true"
        effect: allow
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_lone_surrogate_is_a_parse_error_on_both_engines(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, SURROGATE_POLICY, engine)
    body = '{"messages":[{"role":"user","content":"\\ud800"}]}'
    decision = decide_request(
        config, {"method": "POST", "path": "/v1/chat/completions", "body": body}
    )
    shown = json.dumps(record(decision)) + str(to_check_response(decision))
    assert (decision.allowed, decision.reason, decision.status, decision.rule) == (
        False,
        "request_parse_error",
        400,
        None,
    )
    assert decision.message == "malformed request: body holds an unpaired UTF-16 surrogate"
    assert "basic_string" not in shown and "big" not in shown


class RaisingLibrary(FunctionLibrary):
    """The project's functions, but `secrets` raises as a broken engine extension would."""

    def __init__(self) -> None:
        super().__init__(1000)

        def broken(_: str) -> Any:
            raise RuntimeError("engine internals: pointer 0xdeadbeef")

        self.functions = (CelFunction("secrets", "list", broken), *self.functions[1:])
        self.names = frozenset(f.name for f in self.functions)
        self.by_name = {f.name: f for f in self.functions}


def failing_evaluation(engine: str) -> tuple[Any, Any]:
    """An expression and a binding on which the engine itself raises (not a CEL error)."""
    if engine == "cel-cpp":
        # the C++ runtime cannot hold a string that is not UTF-8; attributes never hand it
        # one (see above), so feed it directly
        cpp = make_engine(engine, list(ROOTS))
        return cpp.compile('request.path == "/"'), cpp.bind({"request": {"path": "\ud800"}})
    library = RaisingLibrary()
    py = make_engine(engine, list(ROOTS), library)
    handle = library.handle(_MEMO)  # a call names its request's memo, as compiled calls do
    program = py.compile(f"secrets(request.path, {REQUEST_HANDLE}).size() > 0")
    return program, py.bind({"request": {"path": "/"}, REQUEST_HANDLE: handle})


_MEMO = DetectorMemo()


@pytest.mark.parametrize("engine", ENGINES)
def test_an_engine_exception_is_a_fixed_message_and_a_log_line(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    program, bound = failing_evaluation(engine)
    with (
        caplog.at_level(logging.ERROR, logger="authz.engine"),
        pytest.raises(EvaluationError) as caught,
    ):
        program.evaluate(bound)
    assert isinstance(caught.value, EngineFailure)
    assert str(caught.value) == "internal engine failure (detail in the service log)"
    inside = "basic_string" if engine == "cel-cpp" else "0xdeadbeef"
    assert inside in caught.value.detail
    assert any(inside in r.getMessage() and engine in r.getMessage() for r in caplog.records)
