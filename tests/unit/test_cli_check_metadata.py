"""`authz check` prints list-valued metadata (a rule's `findings`) as JSON lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authz.cli import main
from tests.unit.helpers import ENGINES

EXAMPLE = "deploy/envoy/policies/example.yaml"


@pytest.mark.parametrize("engine", ENGINES)
def test_list_metadata_is_json(
    tmp_path: Path, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    request = {
        "method": "POST",
        "path": "/v1/chat/completions",
        "context": {"policy": "llm-external"},
        "body": {
            "model": "gpt-4o",
            "messages": [
                {"role": "user", "content": "mail jane.doe@example.org, +44 20 7946 0958"}
            ],
        },
    }
    path = tmp_path / "req.json"
    path.write_text(json.dumps(request))
    code = main(["check", "--config", EXAMPLE, "--request", str(path), "--engine", engine])
    out = capsys.readouterr().out
    result = json.loads(out)
    assert code == 1 and result["rule"] == "pii-leaving"
    assert result["metadata"]["findings"] == ["email", "phone"]
    assert "values {" not in out
