"""`authz test`: cases on both engines, failures shown with what was decided, unreached
rules listed, exit 1 on failure; and the shipped example tests pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.cli import main
from tests.unit.helpers import write_policy

POLICY = """
policies:
  - name: p
    match: "true"
    rules:
      - {name: admins, when: 'request.headers["x-role"] == "admin"', effect: allow,
         headers: {x-who: '"admin"'}}
      - {name: never, when: 'request.path == "/never"', effect: deny}
    default: deny
tests:
  - name: admins pass
    request: {headers: {x-role: admin}}
    expect: {decision: allow, rule: admins, headers: {x-who: admin}}
"""


def test_embedded_tests_pass_and_unreached_rules_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_policy(tmp_path, POLICY)
    assert main(["test", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "1 passed, 0 failed"
    assert "rules no test reaches: p/never" in out


def test_a_failing_expectation_shows_the_actual_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_policy(tmp_path, POLICY, "policy.yaml")
    tests = tmp_path / "policy.tests.yaml"
    tests.write_text(
        "config: policy.yaml\n"
        "tests:\n"
        "  - name: guests pass\n"
        "    request: {headers: {x-role: guest}}\n"
        "    expect: {decision: allow, rule: admins}\n"
    )
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {tests}:3:11 guests pass [cel-cpp]" in out
    assert f"FAILED {tests}:3:11 guests pass [cel-python]" in out
    assert "decision: expected 'allow', got 'deny'" in out
    assert "(decided: deny by p/None: no rule matched; policy 'p' default deny)" in out
    assert out.splitlines()[-1] == "0 passed, 2 failed"


def test_a_broken_test_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_policy(tmp_path, POLICY, "policy.yaml")
    tests = tmp_path / "bad.tests.yaml"
    tests.write_text("config: policy.yaml\ntests:\n  - name: x\n    expect: {decision: maybe}\n")
    assert main(["test", str(tests)]) == 2
    assert "expect.decision must be allow or deny" in capsys.readouterr().err


def test_the_shipped_example_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "deploy/envoy/policies/"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("passed, 0 failed")
