"""Typed policies: every expression is checked against the declared attribute types when a
file is loaded, with the same message and caret on both engines (tests/data/policy/types.yaml
is the table)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from authz.cli import main
from authz.errors import ConfigError
from authz.policy.compiler import load
from tests.unit.helpers import ENGINES, write_policy

TABLE = yaml.safe_load((Path(__file__).parent.parent / "data/policy/types.yaml").read_text())
DATA = "data: " + yaml.safe_dump(TABLE["data"], default_flow_style=True).strip()


def _policy(expr: str, where: str) -> tuple[str, int, int]:
    """A policy file with `expr` in place `where`, and the file position of its first char."""
    quoted = yaml.safe_dump(expr, default_style="'", width=1000).strip().removesuffix("\n...")
    lines = [DATA, "policies:", "  - name: p"]
    if where == "match":
        lines.append(f"    match: {quoted}")
    lines += ["    rules:", "      - name: r"]
    if where in ("when", "match"):
        lines.append(f"        when: {quoted if where == 'when' else repr('true')}")
    else:
        lines += [
            "        when: 'true'",
            f"        {'headers' if where == 'header' else 'metadata'}:",
        ]
        lines.append(f"          x-k: {quoted}")
    lines.append("        effect: allow")
    text = "\n".join(lines) + "\n"
    row = next(i for i, line in enumerate(lines) if line.endswith(quoted))
    col = lines[row].index(quoted) + 2  # 1-based, after the opening quote
    return text, row + 1, col


def _case_id(case: dict[str, Any]) -> str:
    return f"{case.get('where', 'when')}: {case['expr']}"


@pytest.mark.parametrize("case", TABLE["refused"], ids=_case_id)
def test_ill_typed_expression_is_refused_the_same_on_both_engines(
    tmp_path: Path, case: dict[str, Any]
) -> None:
    where = case.get("where", "when")
    text, line, col = _policy(case["expr"], where)
    seen = []
    for engine in ENGINES:
        with pytest.raises(ConfigError) as caught:
            load(str(write_policy(tmp_path, text)), engine)
        (issue,) = caught.value.issues
        seen.append((issue.line, issue.col, issue.message, issue.snippet))
    assert seen[0] == seen[1], "the engines report differently"
    issue_line, issue_col, message, snippet = seen[0]
    assert (issue_line, issue_col) == (line, col + case["col"] - 1)
    assert message.split(": ", 1)[1] == case["message"] or message.endswith(case["message"])
    assert snippet.splitlines()[1].index("^") - 4 == case["col"] - 1


@pytest.mark.parametrize("expr", TABLE["accepted"])
@pytest.mark.parametrize("engine", ENGINES)
def test_well_typed_expression_is_accepted(tmp_path: Path, expr: str, engine: str) -> None:
    text, _, _ = _policy(expr, "when")
    config = load(str(write_policy(tmp_path, text)), engine)
    assert config.policies[0].rules[0].when.source == expr


def test_validate_prints_file_line_col_caret_and_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_policy(
        tmp_path,
        """
        data: {max_tokens: 4096}
        policies:
          - name: chat
            rules:
              - name: cap
                when: data.max_token < llm.max_tokens
                effect: deny
        """,
    )
    assert main(["validate", str(path)]) != 0
    err = capsys.readouterr().err
    assert f"{path}:6:20: rule 'chat/cap' when: 'data' has no field 'max_token'" in err
    assert "(did you mean 'max_tokens'?)" in err
    assert "  | data.max_token < llm.max_tokens\n  |      ^" in err


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """
        policies:
          - name: p
            match: request.size
            rules:
              - {name: a, when: 'identity.groups == "ml"', effect: deny}
              - {name: b, when: 'request.method == 1', effect: deny}
        """
    )
    with pytest.raises(ConfigError) as caught:
        load(str(write_policy(tmp_path, text)), "cel-cpp")
    assert [i.line for i in caught.value.issues] == [3, 5, 6]


def test_a_reload_refuses_an_ill_typed_file_and_keeps_the_last_good(tmp_path: Path) -> None:
    from authz.observability.metrics import Metrics
    from authz.reload import Reloader
    from authz.service import Checker

    good = (
        "policies:\n  - name: p\n    rules:\n"
        "      - {name: r, when: '\"ml\" in identity.groups', effect: allow}\n"
    )
    path = write_policy(tmp_path, good)
    checker = Checker(load(str(path), "cel-cpp"), Metrics())
    reloader = Reloader(checker, str(path), "cel-cpp", interval=0)
    path.write_text(good.replace('"ml" in identity.groups', 'identity.groups == "ml"'))
    before = checker.config
    assert reloader.reload("test") is False
    assert checker.config is before
