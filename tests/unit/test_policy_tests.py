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
    assert out.splitlines()[-1] == "1 case, each on cel-cpp and cel-python: 1 passed, 0 failed"
    assert "rules no case reached: p/never" in out


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
    assert "(decided: deny by p/None: default: no rule matched; policy 'p' default deny)" in out
    # one case failed (on both engines): the summary counts cases, not engine runs
    assert out.splitlines()[-1] == "1 case, each on cel-cpp and cel-python: 0 passed, 1 failed"


def test_a_broken_test_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_policy(tmp_path, POLICY, "policy.yaml")
    tests = tmp_path / "bad.tests.yaml"
    tests.write_text(
        "config: policy.yaml\ntests:\n  - name: x\n    request: {}\n"
        "    expect: {decision: maybe, reason: rulez}\n"
    )
    assert main(["test", str(tests)]) == 2
    err = capsys.readouterr().err
    assert "expect.decision must be allow or deny" in err
    assert "expect.reason 'rulez' is not a reason code; did you mean 'rule'?" in err


def test_the_shipped_example_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "deploy/envoy/policies/"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("passed, 0 failed")


def test_expect_may_give_any_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_policy(tmp_path, POLICY, "policy.yaml")
    tests = tmp_path / "subset.tests.yaml"
    tests.write_text(
        "config: policy.yaml\n"
        "tests:\n"
        "  - {name: status only, request: {headers: {x-role: guest}}, expect: {status: 403}}\n"
        "  - {name: rule only, request: {headers: {x-role: admin}}, expect: {rule: admins}}\n"
        "  - {name: reason only, request: {headers: {x-role: guest}}, expect: {reason: default}}\n"
        "  - {name: headers only, request: {headers: {x-role: admin}},\n"
        "     expect: {headers: {x-who: admin}}}\n"
        "  - {name: policy and metadata, request: {headers: {x-role: admin}},\n"
        "     expect: {policy: p, metadata: {reason: rule, rule: admins}}}\n"
    )
    assert main(["test", str(tests)]) == 0, capsys.readouterr()
    assert capsys.readouterr().out.splitlines()[-1].endswith(": 5 passed, 0 failed")


def test_an_empty_expect_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_policy(tmp_path, POLICY, "policy.yaml")
    tests = tmp_path / "empty.tests.yaml"
    tests.write_text("config: policy.yaml\ntests:\n  - {name: x, request: {}, expect: {}}\n")
    assert main(["test", str(tests)]) == 2
    assert "expect must give at least one of" in capsys.readouterr().err


def test_a_rule_reached_by_a_failing_case_is_not_unreached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_policy(tmp_path, POLICY, "policy.yaml")
    tests = tmp_path / "t.tests.yaml"
    tests.write_text(
        "config: policy.yaml\n"
        "tests:\n"
        "  - {name: wrong status, request: {path: /never, headers: {x-role: guest}},\n"
        "     expect: {status: 418}}\n"
        "  - {name: admins, request: {headers: {x-role: admin}}, expect: {decision: allow}}\n"
    )
    assert main(["test", str(tests), "--coverage"]) == 1
    out = capsys.readouterr().out
    assert "rules no case reached" not in out  # `never` decided the failing case
    assert "  p: 2/2 rules reached" in out


def test_coverage_per_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_policy(tmp_path, POLICY)
    assert main(["test", "--coverage", str(path)]) == 0
    out = capsys.readouterr().out
    assert "coverage (rules that decided at least one case):\n  p: 1/2 rules reached\n" in out


def test_a_path_with_no_tests_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = write_policy(tmp_path, POLICY.split("tests:")[0], "bare.yaml")
    assert main(["test", str(bare)]) == 2
    assert f"authz: {bare}: no tests" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "policy.yaml").write_text(bare.read_text())
    assert main(["test", str(empty)]) == 2
    assert f"authz: {empty}: no YAML file with `tests:` in this folder" in capsys.readouterr().err
