"""Token budgets per tenant through a real Envoy: authz counts a call's tokens and names its
tenant and cost in dynamic metadata; Envoy's local rate limit charges the cost to the
tenant's bucket (`hits_addend` from `%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tokens)%`)
and answers 429 when it is spent. A request that reaches the budget without a tenant and a
valid cost is refused by the route's cost guard: never charged nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.client import http
from tests.support.paths import EXAMPLE_POLICY
from tests.unit.helpers import write_policy

# About 100 tokens of prompt (cl100k_base); with max_tokens 3900 a call costs ~4,000 tokens.
PROMPT = " ".join(["Summarise the quarterly planning notes for the billing team."] * 9)


def chat(envoy: Any, tenant: str | None, max_tokens: int | None) -> tuple[int, dict[str, str]]:
    """One chat completion through Envoy's /v1/ (the llm-external policy)."""
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    headers = {"content-type": "application/json"}
    if tenant is not None:
        headers["x-tenant"] = tenant
    status, seen, _ = http(
        envoy.url("/v1/chat/completions"), "POST", json.dumps(body).encode(), headers
    )
    return status, seen


def test_a_tenants_third_large_call_is_429_another_tenant_and_a_small_call_pass(
    upstream: Any, envoy_factory: Any, authz_factory: Any
) -> None:
    """tenant-a has 10,000 tokens a minute: two ~4,000-token calls pass, the third is 429;
    tenant-b's bucket is its own; a ~100-token call still fits in what tenant-a has left."""
    envoy = envoy_factory(authz_factory(EXAMPLE_POLICY).port, upstream.port)
    a = [chat(envoy, "tenant-a", 3900) for _ in range(3)]
    assert [status for status, _ in a] == [200, 200, 429]
    assert a[2][1]["x-ratelimited-by"] == "authz-token-budget"
    assert [chat(envoy, "tenant-b", 3900)[0] for _ in range(3)] == [200, 200, 200]
    assert chat(envoy, "tenant-a", 10)[0] == 200
    assert chat(envoy, "tenant-a", 3900)[0] == 429
    assert envoy.stat("llm_token_budget.http_local_rate_limit.rate_limited") == 2
    assert len(upstream.requests()) == 6  # a 429 never reaches the model


def test_a_call_without_max_tokens_is_charged_the_default_never_nothing(
    upstream: Any, envoy_factory: Any, authz_factory: Any
) -> None:
    """data.llm_budget.default_max_tokens (4096) + the prompt: the third such call is 429."""
    envoy = envoy_factory(authz_factory(EXAMPLE_POLICY).port, upstream.port)
    assert [chat(envoy, "tenant-a", None)[0] for _ in range(3)] == [200, 200, 429]
    # an unknown tenant is refused by the policy before any bucket is touched
    assert chat(envoy, "tenant-z", 10)[0] == 403
    # no tenant named: the shared budget (large), never tenant-a's
    assert chat(envoy, None, 3900)[0] == 200


# A policy that gets the cost wrong in each way Envoy would not charge.
WRONG_COSTS = """
policies:
  - name: llm-external
    rules:
      - name: case
        when: '"x-case" in request.headers'
        effect: allow
        metadata:
          tenant: '"tenant-a"'
          tokens: >-
            request.headers["x-case"] == "string" ? dyn("4000")
            : request.headers["x-case"] == "text" ? dyn("four thousand")
            : request.headers["x-case"] == "negative" ? dyn(-4000)
            : request.headers["x-case"] == "zero" ? dyn(0)
            : request.headers["x-case"] == "huge" ? dyn(2000000000)
            : dyn(4000)
      - name: no-cost
        when: '"x-no-cost" in request.headers'
        effect: allow
        metadata: {tenant: '"tenant-a"'}
      - name: no-tenant
        when: "true"
        effect: allow
        metadata: {tokens: "4000"}
"""


def test_a_missing_or_invalid_cost_is_refused_never_free(
    tmp_path: Path, upstream: Any, envoy_factory: Any, authz_factory: Any
) -> None:
    """Envoy 1.40 drops a rate-limit descriptor whose hits_addend is missing, not a number,
    negative or above 1e9 (the request would fall to the route's default bucket); the LLM
    routes' RBAC cost guard refuses such a request with 403 before the rate limit, and the
    model never sees it. A valid cost (a number, or a decimal string) is charged."""
    authz = authz_factory(write_policy(tmp_path, WRONG_COSTS))
    envoy = envoy_factory(authz.port, upstream.port)
    url = envoy.url("/v1/chat/completions")
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()

    def send(**headers: str) -> tuple[int, bytes]:
        status, _, text = http(url, "POST", body, {"content-type": "application/json", **headers})
        return status, text

    for case in ("text", "negative", "zero", "huge"):
        status, text = send(**{"x-case": case})
        assert (status, text) == (403, b"RBAC: access denied"), case
    assert send(**{"x-no-cost": "1"}) == (403, b"RBAC: access denied")
    assert send() == (403, b"RBAC: access denied")  # no tenant
    assert upstream.requests() == []
    assert envoy.stat("http.ingress.rbac.denied") == 6
    # valid costs are charged: 4,000 as a number, then as a string, then the bucket is spent
    assert [send(**{"x-case": c})[0] for c in ("number", "string", "number")] == [200, 200, 429]


def test_the_global_variant_refuses_when_the_rate_limit_service_is_away(
    upstream: Any, envoy_factory: Any, authz_factory: Any
) -> None:
    """envoy-global-ratelimit.yaml with no rate limit service listening: an LLM call the
    policy allowed is refused (failure_mode_deny: 500), never waved through uncounted; a
    request the policy denies is still the policy's 403."""
    from tests.support.envoy import find_cluster
    from tests.support.paths import DEPLOY_ENVOY_DIR
    from tests.support.ports import free_port

    dead = free_port()

    def no_service(config: dict[str, Any]) -> None:
        endpoint = find_cluster(config, "ratelimit")["load_assignment"]["endpoints"][0]
        endpoint["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = dead

    envoy = envoy_factory(
        authz_factory(EXAMPLE_POLICY).port,
        upstream.port,
        source=DEPLOY_ENVOY_DIR / "envoy-global-ratelimit.yaml",
        mutate=no_service,
    )
    assert chat(envoy, "tenant-a", 10)[0] == 500
    assert chat(envoy, "tenant-z", 10)[0] == 403
    assert upstream.requests() == []
