"""One decision record: `reason` is the stable code and `message` the operator's text in every
output (authz check, authz test, decision log, span, dynamic metadata); the client's deny body
carries only `error` and `decision_id` unless the config opts into more."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from authz.cli import main
from authz.decision import record
from authz.errors import ConfigError
from authz.observability.decision_log import DecisionLog
from authz.observability.metrics import Metrics
from authz.observability.tracing import Tracing
from authz.request_file import to_check_request
from authz.response import to_check_response
from authz.service import Checker
from tests.support.otlp import OtlpReceiver
from tests.unit.helpers import ENGINES, compile_policy, write_policy

POLICY = """
policies:
  - name: secret-policy
    match: request.path.startsWith("/p")
    rules:
      - {name: secret-rule, when: 'request.headers["x-role"] == "guest"', effect: deny}
      - {name: worded-rule, when: 'request.headers["x-role"] == "bot"', effect: deny,
         status: 429, message: slow down}
      - {name: broken-rule, when: 'request.headers["x-role"] == "oops" && 1 / 0 == 1',
         effect: deny}
      - {name: admins, when: 'request.headers["x-role"] == "admin"', effect: allow}
  - name: routed-only
    rules:
      - {name: nobody, when: "false", effect: allow}
"""
INTERNAL_NAMES = ("secret-policy", "secret-rule", "broken-rule", "routed-only", "nobody")


@pytest.mark.parametrize("engine", ENGINES)
def test_every_output_says_reason_code_and_message_text(
    tmp_path: Path, engine: str, otlp_receiver: OtlpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    request = {"path": "/p", "headers": {"x-role": "guest"}}
    stream = io.StringIO()
    metrics = Metrics()
    checker = Checker(
        config, Tracing(metrics, endpoint=otlp_receiver.endpoint), metrics, DecisionLog(stream)
    )
    decision = checker.check(to_check_request(request))
    checker.tracing.shutdown()
    expected = {
        "decision": "deny",
        "status": 403,
        "policy": "secret-policy",
        "rule": "secret-rule",
        "reason": "rule",
        "message": "denied by rule 'secret-rule'",
    }
    assert record(decision) == {"decision_id": decision.decision_id, **expected}

    logged = json.loads(stream.getvalue())
    assert {k: logged[k] for k in expected} == expected

    span = otlp_receiver.wait_for(lambda s: s.name == "authz.check")[0]
    for key in ("decision", "policy", "rule", "reason", "message"):
        assert span.attributes[f"authz.{key}"] == expected[key]

    metadata = dict(to_check_response(decision).dynamic_metadata)
    assert {k: metadata[k] for k in expected} == expected

    (tmp_path / "req.json").write_text(json.dumps(request))
    assert main(["check", "--config", config.path, "--request", str(tmp_path / "req.json")]) == 1
    checked = json.loads(capsys.readouterr().out)
    assert {k: checked[k] for k in expected} == expected
    assert checked["metadata"]["reason"] == checked["reason"] == "rule"


def test_authz_test_reports_the_message_and_matches_reason_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path, POLICY)
    tests = tmp_path / "t.yaml"
    tests.write_text(
        "config: policy.yaml\ntests:\n"
        "  - {name: guests, request: {path: /p, headers: {x-role: guest}},\n"
        "     expect: {reason: rule, rule: secret-rule}}\n"
        "  - {name: wrong, request: {path: /p, headers: {x-role: nobody}},\n"
        "     expect: {reason: rule}}\n"
    )
    assert policy.exists()
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert "reason: expected 'rule', got 'default'" in out
    assert "no rule matched; policy 'secret-policy' default deny" in out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("request_", "status", "error"),
    [
        ({"path": "/p", "headers": {"x-role": "guest"}}, 403, "access denied"),
        ({"path": "/p", "headers": {"x-role": "bot"}}, 429, "slow down"),
        ({"path": "/p", "headers": {"x-role": "oops"}}, 403, "access denied"),
        ({"path": "/p", "headers": {"x-role": "nobody"}}, 403, "access denied"),
        ({"path": "/elsewhere"}, 403, "access denied"),
        ({"path": "/p", "context": {"policy": "no-such-policy"}}, 403, "access denied"),
        ({"path": "/p", "context": {"policy": "routed-only"}}, 403, "access denied"),
    ],
    ids=["rule", "worded-rule", "evaluation-error", "default", "no-policy", "unknown", "routed"],
)
def test_the_deny_body_names_nothing_internal(
    tmp_path: Path, engine: str, request_: dict, status: int, error: str
) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    decision = Checker(config).check(to_check_request(request_))
    response = to_check_response(decision, config.deny_body)
    body = json.loads(response.denied_response.body)
    assert body == {"error": error, "decision_id": decision.decision_id}
    assert response.denied_response.status.code == status
    said = response.denied_response.body + response.status.message
    assert not any(name in said for name in INTERNAL_NAMES), said
    # ... while the operator's outputs keep them
    assert decision.message and response.dynamic_metadata["reason"] == decision.reason


@pytest.mark.parametrize("engine", ENGINES)
def test_the_config_may_opt_into_more_in_the_deny_body(tmp_path: Path, engine: str) -> None:
    config = compile_policy(
        tmp_path, "deny_body: {include: [rule, policy, reason]}\n" + POLICY, engine
    )
    assert config.deny_body == ("rule", "policy", "reason")
    decision = Checker(config).check(
        to_check_request({"path": "/p", "headers": {"x-role": "guest"}})
    )
    body = json.loads(to_check_response(decision, config.deny_body).denied_response.body)
    assert body == {
        "error": "access denied",
        "decision_id": decision.decision_id,
        "rule": "secret-rule",
        "policy": "secret-policy",
        "reason": "rule",
    }


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("deny_body: {include: [rulez]}", "unknown field 'rulez'; did you mean 'rule'?"),
        (
            "deny_body: {includ: [rule]}",
            "unknown key 'includ' in deny_body; did you mean 'include'",
        ),
        ("deny_body: {include: rule}", ""),  # a single name is a list of one
    ],
)
def test_the_loader_validates_the_deny_body_option(
    tmp_path: Path, section: str, fragment: str
) -> None:
    path = write_policy(tmp_path, section + "\n" + POLICY)
    from authz.policy.loader import load_config

    if not fragment:
        assert load_config(str(path)).deny_body == ("rule",)
        return
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{path}:1:")
