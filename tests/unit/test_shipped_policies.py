"""What the shipped policy pack promises about bodies: a body Envoy may have cut is never
judged as if whole, and authz knows Envoy's buffer limit."""

from __future__ import annotations

from pathlib import Path

import yaml

from authz.policy.compiler import CompiledExpr, CompiledRule, load

PACK = Path("deploy/envoy/policies")
ENVOY = Path("deploy/envoy/envoy.yaml")
BODY_ROOTS = {"body", "llm", "mcp"}


def _exprs(rule: CompiledRule) -> list[CompiledExpr]:
    return [
        rule.when,
        *(e for _, e in rule.headers),
        *(e for _, e in rule.response_headers),
        *(e for _, e in rule.metadata),
    ]


def _reads_body(rule: CompiledRule) -> bool:
    return any(root in BODY_ROOTS for e in _exprs(rule) for root, _ in e.reads)


def _with_request_body(config: dict) -> dict:
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    ext_authz = next(f for f in manager["http_filters"] if f["name"].endswith("ext_authz"))
    return ext_authz["typed_config"]["with_request_body"]


def test_every_policy_that_reads_a_body_denies_a_truncated_one_first() -> None:
    for path in sorted(PACK.glob("*.yaml")):
        if path.name.endswith(".tests.yaml"):
            continue
        config = load(str(path))
        for policy in config.policies:
            if not any(_reads_body(rule) for rule in policy.rules):
                continue
            guard = next(
                (r for r in policy.rules if not r.allow and "body.truncated" in r.when.source),
                None,
            )
            assert guard is not None, f"{path}: policy '{policy.name}' never denies body.truncated"
            before = policy.rules[: policy.rules.index(guard)]
            # an allow before the guard may only decide without the body
            early = [r.name for r in before if r.allow and _reads_body(r)]
            assert early == [], f"{path}: '{policy.name}' allows on a body before {guard.name}"


def test_the_pack_knows_envoys_body_limit() -> None:
    settings = _with_request_body(yaml.safe_load(ENVOY.read_text()))
    # Envoy sends a cut body with partial-body "false" when it stops exactly at the limit,
    # so authz must know the limit to call such a body truncated.
    assert settings["allow_partial_message"] is True
    config = load(str(PACK / "example.yaml"))
    assert config.limits.envoy_max_request_bytes == settings["max_request_bytes"]
