"""Policy unit tests: a request (as `authz check` takes it) and what is expected of the decision.

A test file names the policy file it tests (`config:`, relative to itself) and lists
`tests:`; a policy file may carry its own `tests:`. Each case runs on both engines, on the
same compiler and decide() the server uses; a case passes when every expectation holds on
both. `expect` gives any non-empty subset of `decision`, `status`, `rule`, `policy`,
`reason` (the stable code), `headers` and `metadata` (both: the listed keys must match).

`authz test` prints each failure with what was decided, the rules no case reached (a rule is
reached when it decided a case, on either engine, whether or not the case passed), and a
closing `N cases, each on cel-cpp and cel-python: P passed, F failed`; `--coverage` adds
rules reached / total per policy. Exit 1 on a failure, 2 on a broken file or a path with no
tests.

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

from authz.config.reader import Reader, did_you_mean
from authz.config.source import Located, load_yaml, plain
from authz.decision import REASONS, Decision, record
from authz.errors import ConfigError, ConfigIssue, NoTests, RequestError
from authz.policy.compiler import CompiledConfig, compile_config
from authz.policy.engine import ENGINE_NAMES
from authz.policy.loader import load_config
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
    """Results of running cases: counts per case, failures per engine, rules reached."""

    passed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    reached: set[tuple[str, str, str]] = field(default_factory=set)  # (config, policy, rule)
    engines: tuple[str, ...] = ()

    @property
    def cases(self) -> int:
        """Cases run."""
        return self.passed + self.failed


@dataclass
class Coverage:
    """Every rule of the policies under test, and which of them decided a case."""

    rules: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (config, policy)

    def unreached(self, reached: set[tuple[str, str, str]]) -> list[str]:
        """`policy/rule` for every rule no case reached (file-qualified when names repeat)."""
        qualify = len({config for config, _ in self.rules}) > 1
        out = []
        for (config, policy), rules in self.rules.items():
            prefix = f"{os.path.basename(config)}:" if qualify else ""
            out += [f"{prefix}{policy}/{r}" for r in rules if (config, policy, r) not in reached]
        return out

    def table(self, reached: set[tuple[str, str, str]]) -> list[str]:
        """`  policy: reached/total rules` per policy, in file order."""
        qualify = len({config for config, _ in self.rules}) > 1
        lines = []
        for (config, policy), rules in self.rules.items():
            hit = sum((config, policy, r) in reached for r in rules)
            name = f"{os.path.basename(config)}:{policy}" if qualify else policy
            lines.append(f"  {name}: {hit}/{len(rules)} rules reached")
        return lines


def _expectation(reader: Reader, expect: dict[str, Any], where: Any) -> bool:
    """Check the types of an `expect` mapping; False when it cannot be used."""
    ok = True
    if not expect:
        reader.issue(where, f"expect must give at least one of: {', '.join(sorted(EXPECT_KEYS))}")
        return False
    if "decision" in expect and expect["decision"] not in ("allow", "deny"):
        reader.issue(expect["decision"], "expect.decision must be allow or deny")
        ok = False
    status = expect.get("status")
    if "status" in expect and (isinstance(status, bool) or not isinstance(status, int)):
        reader.issue(reader.key(expect, "status", where), "expect.status must be an integer")
        ok = False
    reason = expect.get("reason")
    if "reason" in expect and reason not in REASONS:
        hint = did_you_mean(str(reason), REASONS)
        reader.issue(
            reason if isinstance(reason, Located) else where,
            f"expect.reason '{reason}' is not a reason code{hint} (codes: {', '.join(REASONS)})",
        )
        ok = False
    for key in ("rule", "policy"):
        if key in expect and expect[key] is not None and not isinstance(expect[key], str):
            reader.issue(reader.key(expect, key, where), f"expect.{key} must be a name or null")
            ok = False
    for key in ("headers", "metadata"):
        if key in expect and not isinstance(expect[key], dict):
            reader.issue(reader.key(expect, key, where), f"expect.{key} must be a mapping")
            ok = False
    return ok


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
        usable = _expectation(reader, expect, name or where) if "expect" in data else False
        request = data.get("request")
        if not isinstance(request, dict):
            reader.issue(name or where, "request must be a mapping")
        if name is None or not isinstance(request, dict) or not usable:
            continue
        position = (
            f"{reader.source.name}:{name.line}:{name.col}"
            if isinstance(name, Located)
            else reader.source.name
        )
        cases.append(Case(str(name), position, plain(request), plain(expect)))
    return cases


def _actual(decision: Decision) -> dict[str, Any]:
    """What a case's `expect` is compared with."""
    fields = record(decision)
    metadata = dict(dynamic_metadata(decision))
    metadata.pop("decision_id", None)
    return {
        "decision": fields["decision"],
        "status": fields["status"],
        "rule": fields["rule"],
        "policy": fields["policy"],
        "reason": fields["reason"],
        "headers": dict(decision.headers),
        "metadata": metadata,
    }


def _mismatches(case: Case, decision: Decision) -> list[str]:
    actual = _actual(decision)
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
            f"(decided: {decision.outcome} by {decision.policy}/{decision.rule}: "
            f"{decision.reason}: {decision.message})"
        )
    return problems


def run_cases(cases: list[Case], configs: dict[str, CompiledConfig], outcome: Outcome) -> None:
    """Run every case on every engine's config."""
    outcome.engines = tuple(dict.fromkeys((*outcome.engines, *configs)))
    for case in cases:
        failed = False
        for engine, config in configs.items():
            try:
                decision = check(config, to_check_request(case.request))
            except RequestError as exc:
                problems = [f"bad request: {exc}"]
            else:
                problems = _mismatches(case, decision)
                if decision.rule and decision.policy:
                    outcome.reached.add((config.path, decision.policy, decision.rule))
            if problems:
                failed = True
                outcome.failures.append(
                    f"FAILED {case.where} {case.name} [{engine}]\n    " + "\n    ".join(problems)
                )
        if failed:
            outcome.failed += 1
        else:
            outcome.passed += 1


def load_suite(path: str) -> tuple[str, list[Case]]:
    """(policy file, cases) from a test file or a policy file with `tests:`."""
    data, source = load_yaml(path)
    reader = Reader(source)
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(path, 1, 1, "a test file must be a mapping")])
    if "config" in data:
        config_path = reader.file(data["config"], reader.key(data, "config", None), "config")
        for key in set(data) - {"config", "tests"}:
            reader.issue(
                key,
                f"unknown key '{key}' in a test file{did_you_mean(key, ('config', 'tests'))}"
                " (known: config, tests)",
            )
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


def run_suites(paths: list[str]) -> tuple[Outcome, Coverage]:
    """Run test files on both engines; raises NoTests when a file holds no case."""
    outcome, coverage = Outcome(), Coverage()
    for path in paths:
        config_path, cases = load_suite(path)
        if not cases:
            raise NoTests(f"{path}: no tests (a test file lists `tests:` under `config:`)")
        loaded = load_config(config_path)
        configs = {engine: compile_config(loaded, engine) for engine in ENGINE_NAMES}
        key = next(iter(configs.values())).path
        for policy in loaded.policies:
            rules = coverage.rules.setdefault((key, str(policy.name)), [])
            rules += [str(r.name) for r in policy.rules if str(r.name) not in rules]
        try:
            run_cases(cases, configs, outcome)
        finally:  # throwaway configs: their key-fetch and model threads end with the suite
            for config in configs.values():
                config.close()
    return outcome, coverage


def summary(outcome: Outcome) -> str:
    """The closing line: cases, the engines each ran on, passed and failed."""
    engines = " and ".join(outcome.engines) or "no engine"
    noun = "case" if outcome.cases == 1 else "cases"
    return (
        f"{outcome.cases} {noun}, each on {engines}: "
        f"{outcome.passed} passed, {outcome.failed} failed"
    )


def discover(paths: list[str]) -> list[str]:
    """Files to run: the paths given, folders expanded to their *.yaml files with tests;
    raises NoTests for a folder with none."""
    found = []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        inside = []
        for name in sorted(os.listdir(path)):
            if name.endswith((".yaml", ".yml")):
                candidate = os.path.join(path, name)
                with open(candidate, encoding="utf-8") as fh:
                    if "\ntests:" in "\n" + fh.read():
                        inside.append(candidate)
        if not inside:
            raise NoTests(f"{path}: no YAML file with `tests:` in this folder")
        found += inside
    return found
