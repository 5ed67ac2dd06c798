"""Metrics and the decision log, on the real prometheus-client registry and a real stream."""

from __future__ import annotations

import io
import json
from pathlib import Path

from authz.observability.decision_log import DecisionLog, LogOptions
from authz.observability.metrics import LATENCY_BUCKETS, Metrics
from authz.request_file import to_check_request
from authz.service import Checker
from tests.unit.helpers import compile_policy

POLICY = """
identity:
  api_keys: {header: x-api-key, file: keys.yaml}
policies:
  - name: p
    match: "true"
    rules:
      - name: secret-word
        when: body.text.contains("forbidden")
        effect: deny
      - name: broken
        when: request.headers["x-missing"] == "1" && request.path == "/broken"
        effect: allow
      - name: rest
        when: "true"
        effect: allow
"""


def checker(tmp_path: Path, log: DecisionLog | None = None) -> Checker:
    """A Checker on the test policy with fresh metrics."""
    (tmp_path / "keys.yaml").write_text("keys: []\n")
    return Checker(compile_policy(tmp_path, POLICY, "cel-cpp"), metrics=Metrics(), log=log)


def test_decisions_latency_and_errors_are_counted(tmp_path: Path) -> None:
    subject = checker(tmp_path)
    for request in (
        {"path": "/ok", "headers": {"x-missing": "0"}},
        {"path": "/ok", "headers": {"x-missing": "0"}},
        {"method": "POST", "path": "/ok", "body": "forbidden"},
        {"path": "/broken"},
    ):
        subject.check(to_check_request(request))
    value = subject.metrics.registry.get_sample_value
    assert (
        value(
            "authz_decisions_total",
            {"policy": "p", "rule": "rest", "decision": "allow", "reason": "rule"},
        )
        == 2
    )
    assert (
        value(
            "authz_decisions_total",
            {"policy": "p", "rule": "secret-word", "decision": "deny", "reason": "rule"},
        )
        == 1
    )
    assert value("authz_evaluation_errors_total", {"reason": "evaluation_error"}) == 1
    assert value("authz_check_duration_seconds_count") == 4
    text = subject.metrics.exposition().decode()
    for bucket in ("0.0001", "0.005", "0.01", "0.025", "0.05", "1.0"):
        assert f'authz_check_duration_seconds_bucket{{le="{bucket}"}}' in text
    assert LATENCY_BUCKETS[0] == 0.0001 and LATENCY_BUCKETS[-1] == 1.0


def test_decision_log_line_and_masking(tmp_path: Path) -> None:
    stream = io.StringIO()
    log = DecisionLog(stream, LogOptions(headers=True, body_chars=200))
    subject = checker(tmp_path, log)
    subject.check(
        to_check_request(
            {
                "method": "POST",
                "path": "/upload?x=1",
                "headers": {
                    "authorization": "Bearer abc.def.ghi",
                    "cookie": "session=s3cr3t",
                    "x-api-key": "k-123456789",
                    "x-note": "mail bob@example.com",
                    "x-missing": "0",
                },
                "body": "forbidden: card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE",
            }
        )
    )
    line = json.loads(stream.getvalue().strip())
    assert (line["decision"], line["policy"], line["rule"], line["status"]) == (
        "deny",
        "p",
        "secret-word",
        403,
    )
    assert line["reason"] == "rule" and line["message"] == "denied by rule 'secret-word'"
    assert (line["method"], line["path"]) == ("POST", "/upload")
    assert len(line["decision_id"]) == 32 and line["latency_ms"] >= 0
    assert line["trace_id"] is None  # tracing is off here
    headers = line["headers"]
    assert headers["authorization"] == headers["cookie"] == headers["x-api-key"] == "[MASKED]"
    assert headers["x-note"] == "mail [EMAIL]"
    assert line["body"] == "forbidden: card [PAYMENT_CARD], key [AWS_ACCESS_KEY]"
    assert "s3cr3t" not in stream.getvalue() and "4111" not in stream.getvalue()


def test_decision_log_defaults_leave_headers_and_body_out(tmp_path: Path) -> None:
    stream = io.StringIO()
    subject = checker(tmp_path, DecisionLog(stream))
    subject.check(to_check_request({"path": "/ok", "headers": {"x-missing": "0"}}))
    line = json.loads(stream.getvalue())
    assert "headers" not in line and "body" not in line
    assert line["decision"] == "allow"


def test_a_broken_log_sink_does_not_change_the_decision(tmp_path: Path) -> None:
    class Broken(io.StringIO):
        def write(self, _: str) -> int:
            raise OSError("disk full")

    log = DecisionLog(Broken())
    subject = checker(tmp_path, log)
    decision = subject.check(to_check_request({"path": "/ok", "headers": {"x-missing": "0"}}))
    assert decision.allowed and log.failures == 1


def test_cache_hits_and_detector_runs_are_counted(tmp_path: Path) -> None:
    config = compile_policy(
        tmp_path,
        """
        cache: {}
        policies:
          - name: chat
            rules:
              - {name: inj, when: 'injection(request.path).size() > 0', effect: deny}
              - {name: ok, when: "true", effect: allow}
    """,
        "cel-cpp",
    )
    subject = Checker(config, metrics=Metrics())
    for _ in range(3):
        subject.check(to_check_request({"path": "/a", "context": {"policy": "chat"}}))
    value = subject.metrics.registry.get_sample_value
    assert value("authz_decision_cache_hits_total") == 2
    assert value("authz_detector_runs_total") == 1  # only the miss scanned
