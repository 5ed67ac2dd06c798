"""Rate limiting stays in Envoy, keyed on the decision: the `tenant` policy names the tenant
in dynamic metadata and Envoy's local rate limit filter keeps a bucket per tenant."""

from __future__ import annotations

from typing import Any

from tests.support.client import http
from tests.support.paths import EXAMPLE_POLICY


def test_tenant_a_past_its_limit_gets_429_while_tenant_b_passes(
    upstream: Any, envoy_factory: Any, authz_factory: Any
) -> None:
    authz = authz_factory(EXAMPLE_POLICY)
    envoy = envoy_factory(authz.port, upstream.port)
    a = [http(envoy.url("/tenant/report"), headers={"x-tenant": "tenant-a"}) for _ in range(5)]
    assert [status for status, _, _ in a] == [200, 200, 200, 429, 429]
    assert a[3][1]["x-ratelimited-by"] == "authz-tenant"
    b = [http(envoy.url("/tenant/report"), headers={"x-tenant": "tenant-b"})[0] for _ in range(10)]
    assert b == [200] * 10
    # an unknown tenant is denied by the policy before any bucket is touched
    assert http(envoy.url("/tenant/report"), headers={"x-tenant": "tenant-z"})[0] == 403
    assert len(upstream.requests()) == 13
