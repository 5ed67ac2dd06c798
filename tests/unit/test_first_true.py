"""A policy's rules run as one program (the index of the first true `when`), with the same
decisions as rule by rule: the first match decides, and a rule that errs is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.decision import DEFAULT, EVALUATION_ERROR, RULE
from tests.unit.helpers import ENGINES, compile_policy, decide_request

POLICY = """
policies:
  - name: p
    match: "true"
    rules:
      - name: admin
        when: request.headers["x-role"] == "admin"
        effect: allow
      - name: strict
        when: request.headers["x-mode"] == "strict" && request.method != "GET"
        effect: deny
        status: 409
      - name: reader
        when: request.method == "GET"
        effect: allow
        headers: {x-rule: '"reader"'}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_one_program_decides_as_the_rules_do(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY, engine)
    assert config.policies[0].first is not None

    def decide(method: str, headers: dict[str, str]) -> tuple[str, str | None, int]:
        decision = decide_request(config, {"method": method, "headers": headers})
        return decision.reason, decision.rule, decision.status

    assert decide("POST", {"x-role": "admin"}) == (RULE, "admin", 200)
    both = {"x-role": "user", "x-mode": "strict"}
    assert decide("DELETE", both) == (RULE, "strict", 409)
    assert decide("GET", both) == (RULE, "reader", 200)
    assert decide("POST", {"x-role": "user", "x-mode": "lax"}) == (DEFAULT, None, 403)
    # `x-mode` missing: the second rule errs, and the one-by-one run names it
    assert decide("POST", {"x-role": "user"}) == (EVALUATION_ERROR, "strict", 403)
    # (an error absorbed by && with a false side is false, on both paths)
    assert decide("GET", {"x-role": "user"}) == (RULE, "reader", 200)
    # the first rule errs before any other is read
    assert decide("GET", {}) == (EVALUATION_ERROR, "admin", 403)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_single_rule_needs_no_program(tmp_path: Path, engine: str) -> None:
    one = POLICY.split("      - name: strict")[0]
    config = compile_policy(tmp_path, one, engine)
    assert config.policies[0].first is None
    assert decide_request(config, {"headers": {"x-role": "admin"}}).rule == "admin"
