"""Policy unit tests: a request (as `authz check` takes it) and the decision expected.

A test file names the policy file it tests (`config:`, relative to itself) and lists
`tests:`; a policy file may carry its own `tests:`. Each case runs on both engines, on the
same compiler and decide() the server uses. `authz test` prints a line per failure and a
closing `N passed, M failed`, lists rules no test reached, and exits 1 on any failure.

    config: example.yaml
    tests:
      - name: ml team may read
        request: {path: /team/x, headers: {x-team: ml}, context: {policy: team}}
        expect: {decision: allow, rule: ml-team, headers: {x-authz-team: ml}}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from authz.errors import ConfigError, ConfigIssue, RequestError
from authz.policy.compiler import CompiledConfig, compile_config
from authz.policy.engines import ENGINE_NAMES
from authz.policy.loader import load_config
from authz.policy.reader import Reader
from authz.policy.source import Located, load_yaml, plain
from authz.request_file import to_check_request
from authz.response import dynamic_metadata
from authz.service import check

EXPECT_KEYS = {"decision", "status", "rule", "policy", "headers", "metadata", "reason"}
CASE_KEYS = {"name", "request", "expect"}


@dataclass(frozen=True)
class Case:
    """One test: where it is written, the request, and what must come out."""

    name: str
    where: str
    request: dict[str, Any]
    expect: dict[str, Any]


@dataclass
class Outcome:
    """Results of running cases."""

    passed: int = 0
    failures: list[str] = field(default_factory=list)
    reached: set[tuple[str, str]] = field(default_factory=set)  # (policy, rule)


def read_cases(raw: Any, reader: Reader, where: Any) -> list[Case]:
    """Cases from a `tests:` list, shape errors into the reader."""
    if not isinstance(raw, list):
        reader.issue(where, "tests must be a list")
        return []
    cases = []
    for item in raw:
        data = reader.mapping(item, where, "test", CASE_KEYS)
        name = reader.text(data.get("name"), where, "test name")
        expect = reader.mapping(data.get("expect"), name or where, "expect", EXPECT_KEYS)
        decision = expect.get("decision")
        if decision not in ("allow", "deny"):
            reader.issue(name or where, "expect.decision must be allow or deny")
        request = data.get("request")
        if not isinstance(request, dict):
            reader.issue(name or where, "request must be a mapping")
        if name is None or not isinstance(request, dict) or decision not in ("allow", "deny"):
            continue
        position = (
            f"{reader.source.name}:{name.line}:{name.col}"
            if isinstance(name, Located)
            else reader.source.name
        )
        cases.append(Case(str(name), position, plain(request), plain(expect)))
    return cases


def _mismatches(case: Case, config: CompiledConfig) -> list[str]:
    decision = check(config, to_check_request(case.request))
    actual = {
        "decision": decision.outcome,
        "status": decision.status,
        "rule": decision.rule,
        "policy": decision.policy,
        "reason": decision.code,
        "headers": dict(decision.headers),
        "metadata": {
            k: v for k, v in dict(dynamic_metadata(decision)).items() if k not in ("decision_id",)
        },
    }
    problems = []
    for key, wanted in case.expect.items():
        got = actual[key]
        if key in ("headers", "metadata"):
            missing = {k: v for k, v in wanted.items() if got.get(k) != v}
            if missing:
                problems.append(f"{key}: expected {missing}, got {got}")
        elif got != wanted:
            problems.append(f"{key}: expected {wanted!r}, got {got!r}")
    if problems:
        problems.append(
            f"(decided: {decision.outcome} by {decision.policy}/{decision.rule}: {decision.reason})"
        )
    return problems


def run_cases(cases: list[Case], configs: dict[str, CompiledConfig], outcome: Outcome) -> None:
    """Run every case on every engine's config."""
    for case in cases:
        failed = False
        for engine, config in configs.items():
            try:
                problems = _mismatches(case, config)
            except RequestError as exc:
                problems = [f"bad request: {exc}"]
            if problems:
                failed = True
                outcome.failures.append(
                    f"FAILED {case.where} {case.name} [{engine}]\n    " + "\n    ".join(problems)
                )
        if not failed:
            outcome.passed += 1
            first = next(iter(configs.values()))
            decision = check(first, to_check_request(case.request))
            if decision.rule:
                outcome.reached.add((decision.policy or "", decision.rule))


def load_suite(path: str) -> tuple[str, list[Case]]:
    """(policy file, cases) from a test file or a policy file with `tests:`."""
    data, source = load_yaml(path)
    reader = Reader(source)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(path, 1, 1, "a test file must be a mapping")])
    if "config" in data:
        config_path = reader.file(data["config"], reader.key(data, "config", None), "config")
        unknown = set(data) - {"config", "tests"}
        for key in unknown:
            reader.issue(key, f"unknown key '{key}' in a test file (known: config, tests)")
    else:
        config_path = path  # a policy file carrying its own tests
    cases = read_cases(data.get("tests", []), reader, reader.key(data, "tests", None))
    if reader.issues:
        raise ConfigError(reader.issues)
    return config_path or path, cases


def embedded_tests_pass(config_path: str, config: CompiledConfig) -> list[str]:
    """Failures of the tests a policy file carries, on the given compiled config."""
    _, cases = load_suite(config_path)
    outcome = Outcome()
    run_cases(cases, {config.engine.name: config}, outcome)
    return outcome.failures


def run_suites(paths: list[str]) -> tuple[Outcome, list[str]]:
    """Run test files; returns the outcome and the rules no test reached."""
    outcome = Outcome()
    all_rules: set[tuple[str, str]] = set()
    for path in paths:
        config_path, cases = load_suite(path)
        loaded = load_config(config_path)
        configs = {engine: compile_config(loaded, engine) for engine in ENGINE_NAMES}
        for policy in loaded.policies:
            all_rules.update((str(policy.name), str(rule.name)) for rule in policy.rules)
        run_cases(cases, configs, outcome)
    unreached = sorted(f"{p}/{r}" for p, r in all_rules - outcome.reached)
    return outcome, unreached


def discover(paths: list[str]) -> list[str]:
    """Files to run: the paths given, folders expanded to their *.yaml files with tests."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith((".yaml", ".yml")):
                    candidate = os.path.join(path, name)
                    with open(candidate, encoding="utf-8") as fh:
                        if "\ntests:" in "\n" + fh.read():
                            found.append(candidate)
        else:
            found.append(path)
    return found
