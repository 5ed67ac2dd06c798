"""A broken config is refused at load with FILE:LINE:COL, the expression and a caret."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.cli import main
from authz.config.reader import did_you_mean
from authz.errors import ConfigError
from authz.policy.compiler import load
from authz.policy.parse_tree import did_you_mean as cel_did_you_mean
from tests.unit.helpers import ENGINES, write_policy

BROKEN = """
policies:
  - name: p
    match: request.pathx == "/a"
    rules:
      - name: r1
        when: 'request.path +'
        effect: allow
        headers: {x-ok: 'nope.x'}
      - name: r2
        when: |
          request.path == "/a" &&
            foo(1)
        effect: deny
"""


def issues_for(tmp_path: Path, text: str, engine: str) -> list:
    """The issues a config load reports."""
    with pytest.raises(ConfigError) as caught:
        load(str(write_policy(tmp_path, text)), engine)
    return caught.value.issues


@pytest.mark.parametrize("engine", ENGINES)
def test_every_broken_expression_is_reported_with_its_position(tmp_path: Path, engine: str) -> None:
    issues = issues_for(tmp_path, BROKEN, engine)
    where = [(i.line, i.message.split(":")[0]) for i in issues]
    assert where == [
        (3, "policy 'p' match"),
        (6, "rule 'p/r1' when"),
        (8, "rule 'p/r1' header 'x-ok'"),
        (12, "rule 'p/r2' when"),
    ]
    first = issues[0]
    # `pathx` starts at column 20 of line 3: "    match: request.pathx"
    assert (first.col, first.file) == (20, str(tmp_path / "policy.yaml"))
    assert "'request' has no field 'pathx' (did you mean 'path'?)" in first.message
    assert first.snippet.splitlines() == ['  | request.pathx == "/a"', "  |         ^"]
    # the block scalar's second line: "      foo(1)" — an undeclared function
    assert "foo" in issues[3].message and issues[3].line == 12
    assert str(first).startswith(f"{tmp_path / 'policy.yaml'}:3:20: ")


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [
        ("policies: [}", 1, 12, "invalid YAML"),
        ("policies: []\n", 1, 1, "policies must be a non-empty list"),
        ("engine: v8\npolicies: [{name: a, rules: []}]\n", 1, 9, "engine must be one of"),
        (
            "policies:\n  - name: a\n    rules:\n      - name: r\n        whenn: 'true'\n"
            "        effect: allow\n",
            5,
            9,
            "unknown key 'whenn'",
        ),
        (
            "policies:\n  - name: a\n    rules:\n      - {name: r, when: 'true', effect: maybe}\n",
            4,
            41,
            "rule effect must be one of",
        ),
        (
            "policies:\n  - name: a\n    rules:\n      - {name: r, when: 'true', effect: deny,"
            " status: 1000}\n",
            4,
            47,
            "HTTP status",
        ),
        (
            "policies:\n  - name: a\n    rules:\n      - {name: r, when: 'true', effect: allow,"
            " headers: {'bad name': '1'}}\n",
            4,
            58,
            "invalid header name",
        ),
        (
            "policies:\n  - name: a\n    rules:\n      - {name: r, when: 'true', effect: allow,"
            " metadata: {decision_id: '1'}}\n",
            4,
            59,
            "reserved",
        ),
        (
            "policies:\n  - {name: a, rules: []}\n  - {name: a, rules: []}\n",
            3,
            12,
            "duplicate policy name",
        ),
        *[
            (
                f"limits: {{envoy_max_request_bytes: {value}}}\n"
                "policies: [{name: a, rules: []}]\n",
                1,
                10,
                "limits.envoy_max_request_bytes must be a positive integer",
            )
            for value in ("0", "-1", "true", "65536.0", '"65536"')
        ],
    ],
)
def test_shape_errors_name_the_place(
    tmp_path: Path, text: str, line: int, col: int, fragment: str
) -> None:
    issues = issues_for(tmp_path, text, "cel-cpp")
    assert any(i.line == line and i.col == col and fragment in i.message for i in issues), issues


def test_validate_prints_issues_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_policy(tmp_path, BROKEN)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3:20: policy 'p' match" in err
    assert "Traceback" not in err


def test_validate_accepts_the_shipped_examples(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = sorted(
        p
        for p in Path("deploy/envoy/policies").glob("*.yaml")
        if not p.name.endswith(".tests.yaml")
    )
    assert shipped
    for path in shipped:
        for engine in ENGINES:
            assert main(["validate", str(path), "--engine", engine]) == 0, path
    assert "ok" in capsys.readouterr().out


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load(str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize(
    ("word", "hint"),
    [
        ("WHEN", "; did you mean 'when'?"),  # case alone: difflib's ratio for it is 0
        ("efect", "; did you mean 'effect'?"),
        ("zzz", ""),
    ],
)
def test_a_config_key_hint_names_the_key_it_misspells(word: str, hint: str) -> None:
    assert did_you_mean(word, ["when", "effect", "status"]) == hint


def test_a_cel_name_hint_is_looser_and_worded_for_an_expression() -> None:
    assert cel_did_you_mean("Request", ["request", "identity"]) == " (did you mean 'request'?)"
    assert cel_did_you_mean("idty", ["request", "identity"]) == " (did you mean 'identity'?)"
    assert did_you_mean("idty", ["request", "identity"]) == ""
