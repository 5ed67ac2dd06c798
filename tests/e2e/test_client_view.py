"""What a client sees through the shipped Envoy config: nothing internal (no policy or rule
name unless the config opts in), and the config works with a policy file of one's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.support.client import http
from tests.support.paths import EXAMPLE_POLICY
from tests.unit.helpers import write_policy

ENVOY = Path("deploy/envoy/envoy.yaml")
OWN = """
policies:
  - name: my-secret-policy-name
    match: request.path.startsWith("/orders/")
    rules:
      - {name: my-secret-rule-name, when: 'request.method == "DELETE"', effect: deny}
      - {name: reads, when: 'request.method == "GET"', effect: allow}
"""


def route_policies() -> set[str]:
    """Every policy name the shipped routes pin through context_extensions."""
    text = ENVOY.read_text()
    return set(re.findall(r"context_extensions: \{ policy: ([\w-]+) \}", text))


def test_the_shipped_routes_name_only_example_policies_and_say_so() -> None:
    example = {p["name"] for p in yaml.safe_load(EXAMPLE_POLICY.read_text())["policies"]}
    names = route_policies()
    assert names and names <= example, names - example
    note = ENVOY.read_text().split("# EXAMPLE POLICY NAMES:", 1)[1].split("\n\n", 1)[0]
    assert all(name in note for name in names), note
    assert "deploy/envoy/policies/example.yaml" in note


def test_another_policy_file_works_and_its_names_stay_inside(
    upstream, envoy_factory, authz_factory, tmp_path: Path
) -> None:
    authz = authz_factory(write_policy(tmp_path, OWN))
    envoy = envoy_factory(authz.port, upstream.port)
    # the catch-all route names no policy: the file's own `match` decides
    assert http(envoy.url("/orders/7"))[0] == 200
    status, headers, body = http(envoy.url("/orders/7"), "DELETE")
    payload = json.loads(body)
    assert status == 403 and headers["content-type"] == "application/json"
    assert set(payload) == {"error", "decision_id"} and payload["error"] == "access denied"
    # a route pinned to an example policy this file lacks: a deny, and no name leaks
    status, _, body = http(envoy.url("/team/x"))
    assert status == 403 and set(json.loads(body)) == {"error", "decision_id"}
    for raw in (body, http(envoy.url("/orders/7"), "DELETE")[2]):
        assert b"my-secret" not in raw and b"team" not in raw
    assert [r["path"] for r in upstream.requests()] == ["/orders/7"]
    # the operator's decision line has them all
    log = authz.log_text()
    assert '"rule": "my-secret-rule-name"' in log and '"reason": "unknown_policy"' in log


def test_the_config_may_opt_into_names_in_the_body(
    upstream, envoy_factory, authz_factory, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path, "deny_body: {include: [rule, reason]}\n" + OWN)
    authz = authz_factory(policy)
    envoy = envoy_factory(authz.port, upstream.port)
    status, _, body = http(envoy.url("/orders/7"), "DELETE")
    payload = json.loads(body)
    assert status == 403
    assert (payload["rule"], payload["reason"], payload["error"]) == (
        "my-secret-rule-name",
        "rule",
        "access denied",
    )
    assert "policy" not in payload


def test_log_explain_puts_the_explanation_in_the_decision_line(
    upstream, envoy_factory, authz_factory, tmp_path: Path
) -> None:
    authz = authz_factory(write_policy(tmp_path, OWN), extra_args=("--log-explain",))
    envoy = envoy_factory(authz.port, upstream.port)
    assert http(envoy.url("/orders/7"), "DELETE")[0] == 403
    line = next(
        json.loads(text)
        for text in authz.log_text().splitlines()
        if text.startswith("{") and '"my-secret-rule-name"' in text
    )
    assert line["selection"]["policies"][0] == {
        "policy": "my-secret-policy-name",
        "result": "true",
        "parts": [],  # one call, neither a comparison nor an && / || chain
    }
    assert line["explain"][0]["result"] == "true"
    assert {"expr": "request.method", "value": "DELETE"} in line["explain"][0]["parts"]
