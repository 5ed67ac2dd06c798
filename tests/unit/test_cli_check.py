"""`authz check`: one request offline; exit 0 allow, 1 deny, 2 usage or config error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authz.cli import main
from tests.unit.helpers import ENGINES

EXAMPLE = "deploy/envoy/policies/example.yaml"


def run_check(
    tmp_path: Path, request: object, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    """Write the request file, run the command, return exit code, stdout and stderr."""
    path = tmp_path / "req.json"
    path.write_text(request if isinstance(request, str) else json.dumps(request))
    code = main(["check", "--config", EXAMPLE, "--request", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("engine", ENGINES)
def test_allow_prints_decision_and_exits_0(
    tmp_path: Path, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    request = {"path": "/team/a", "headers": {"x-team": "ml"}, "context": {"policy": "team"}}
    code, out, _ = run_check(tmp_path, request, capsys, "--engine", engine)
    result = json.loads(out)
    assert code == 0
    assert (result["decision"], result["status"], result["rule"]) == ("allow", 200, "ml-team")
    assert result["headers"] == {"x-authz-team": "ml"}
    assert result["metadata"]["tenant"] == "ml"


@pytest.mark.parametrize("engine", ENGINES)
def test_deny_exits_1(tmp_path: Path, engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    request = {
        "method": "POST",
        "path": "/upload/a",
        "body": "TOP-SECRET",
        "context": {"policy": "upload"},
    }
    code, out, _ = run_check(tmp_path, request, capsys, "--engine", engine)
    result = json.loads(out)
    assert code == 1
    assert (result["decision"], result["status"], result["rule"]) == (
        "deny",
        422,
        "forbidden-marker",
    )
    assert result["reason"] == "rule" == result["metadata"]["reason"]
    assert result["message"] == "denied by rule 'forbidden-marker': body carries a forbidden marker"


def test_bad_request_file_exits_2_with_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_check(tmp_path, '{"path": "/a",\n  "headers": }', capsys)
    assert code == 2 and out == ""
    assert f"{tmp_path / 'req.json'}:2:14: invalid JSON" in err
    code, _, err = run_check(tmp_path, {"pathh": "/a"}, capsys)
    assert code == 2 and "unknown request keys: pathh" in err


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "p.yaml"
    config.write_text("policies: nope\n")
    request = tmp_path / "req.json"
    request.write_text("{}")
    assert main(["check", "--config", str(config), "--request", str(request)]) == 2
    assert "policies must be a non-empty list" in capsys.readouterr().err
