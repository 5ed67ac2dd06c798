"""Dry-run policies: decided, traced, logged and counted as they would have been, then
allowed; the upstream can be told through a header (through Envoy: tests/e2e/test_dry_run.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from authz.observability.decision_log import DecisionLog
from authz.observability.metrics import Metrics
from authz.request_file import to_check_request
from authz.response import to_check_response
from authz.service import Checker
from tests.unit.helpers import ENGINES, compile_policy

POLICY = """
policies:
  - name: public
    mode: dry-run
    dry_run_header: x-authz-dry-run
    rules:
      - {name: no-delete, when: 'request.method == "DELETE"', effect: deny, status: 405}
      - {name: bad-header, when: 'request.headers["x-missing"] == "1"', effect: allow}
"""


def test_a_would_be_deny_is_allowed_and_recorded(tmp_path: Path) -> None:
    for engine in ENGINES:
        stream = io.StringIO()
        checker = Checker(
            compile_policy(tmp_path, POLICY, engine), metrics=Metrics(), log=DecisionLog(stream)
        )
        decision = checker.check(
            to_check_request({"method": "DELETE", "context": {"policy": "public"}})
        )
        assert decision.allowed and decision.would_deny is not None
        assert decision.would_deny.rule == "no-delete" and decision.would_deny.status == 405
        assert dict(decision.headers) == {
            "x-authz-dry-run": "deny; status=405; rule=no-delete; reason=rule"
        }
        response = to_check_response(decision)
        assert response.status.code == 0 and response.HasField("ok_response")
        assert response.dynamic_metadata["would_decision"] == "deny"
        line = json.loads(stream.getvalue())
        assert line["decision"] == "allow"
        assert line["dry_run"]["rule"] == "no-delete" and line["dry_run"]["status"] == 405
        value = checker.metrics.registry.get_sample_value
        assert (
            value(
                "authz_decisions_total",
                {"policy": "public", "rule": "no-delete", "decision": "deny", "reason": "rule"},
            )
            == 1
        )
        assert value("authz_dry_run_allowed_total", {"policy": "public"}) == 1
        # an evaluation error in a dry-run policy is a would-be deny too
        errored = checker.check(to_check_request({"context": {"policy": "public"}}))
        assert errored.allowed and errored.would_deny.reason == "evaluation_error"
