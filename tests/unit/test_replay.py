"""`authz replay`: re-decide a decision log under a candidate config; hashed values that
the new outcome depends on make a request not replayable, never guessed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from authz.cli import main
from authz.observability.decision_log import ALWAYS_MASKED, DecisionLog, LogOptions
from authz.request_file import to_check_request
from authz.service import Checker
from tests.unit.helpers import compile_policy, write_policy

OLD = """
policies:
  - name: team
    rules:
      - {name: ml, when: 'request.headers["x-team"] == "ml"', effect: allow}
  - name: token
    rules:
      - {name: bearer, when: '"authorization" in request.headers', effect: allow}
  - name: body
    rules:
      - {name: short, when: 'size(body.text) < 100', effect: allow}
"""
NEW = OLD.replace(
    'request.headers["x-team"] == "ml"', 'request.headers["x-team"] in ["ml", "sales"]'
)


def logged(tmp_path: Path) -> str:
    """Decision lines with replay records for a few requests under OLD."""
    stream = io.StringIO()
    log = DecisionLog(stream, LogOptions(replay=True, masked_headers=ALWAYS_MASKED))
    checker = Checker(compile_policy(tmp_path, OLD, "cel-cpp"), log=log)
    for request in (
        {"path": "/t", "headers": {"x-team": "ml"}, "context": {"policy": "team"}},
        {"path": "/t", "headers": {"x-team": "sales"}, "context": {"policy": "team"}},
        {
            "path": "/t",
            "headers": {"authorization": "Bearer s3cr3t"},
            "context": {"policy": "token"},
        },
        {
            "method": "POST",
            "path": "/b",
            "body": "mail me: jane@example.org",
            "context": {"policy": "body"},
        },
    ):
        checker.check(to_check_request(request))
    return stream.getvalue()


def test_records_keep_secrets_hashed(tmp_path: Path) -> None:
    lines = [json.loads(x) for x in logged(tmp_path).splitlines()]
    token = lines[2]["replay"]["request"]["headers"]["authorization"]
    assert token.startswith("hashed:") and "s3cr3t" not in json.dumps(lines)
    assert lines[3]["replay"]["request"]["body"].startswith("hashed:")
    assert "jane@example.org" not in json.dumps(lines)
    assert lines[1]["replay"]["request"]["headers"]["x-team"] == "sales"


def test_replay_reports_what_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "decisions.jsonl"
    log.write_text(logged(tmp_path) + "not json\n")
    candidate = write_policy(tmp_path, NEW, "new.yaml")
    assert main(["replay", "--config", str(candidate), str(log)]) == 0
    out = capsys.readouterr().out
    assert "replayed 4 requests (1 log lines without a record)" in out
    assert "  allow -> allow: 1" in out and "  deny -> allow: 1" in out
    assert "  team/None -> team/ml: 1" in out
    assert "not replayable (the outcome depends on a hashed value): 2" in out
    assert "changed: 1; the first 1:" in out
    assert "/t: deny (None) -> allow (ml" in out


def test_a_record_the_candidate_refuses_is_a_deny_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a logged request whose body holds NUL: the candidate reads the body, so it is refused
    record = {
        "decision_id": "d1",
        "decision": "allow",
        "policy": "body",
        "rule": "short",
        "replay": {
            "request": {
                "method": "POST",
                "path": "/b",
                "body": "a\u0000b",
                "headers": {},
                "context": {"policy": "body"},
            },
            "identity": {
                "authenticated": False,
                "method": "anonymous",
                "subject": "",
                "issuer": "",
                "audiences": [],
                "groups": [],
                "scopes": [],
                "claims": {},
                "spiffe_id": "",
                "trust_domain": "",
                "api_key": "",
                "expires_at": 0,
                "error": "",
            },
        },
    }
    log = tmp_path / "decisions.jsonl"
    log.write_text(json.dumps(record) + "\n")
    candidate = write_policy(tmp_path, NEW, "new.yaml")
    assert main(["replay", "--config", str(candidate), str(log)]) == 0
    out = capsys.readouterr().out
    assert "  allow -> deny: 1" in out
    assert "/b: allow (short) -> deny (None: malformed request: body holds a NUL" in out
