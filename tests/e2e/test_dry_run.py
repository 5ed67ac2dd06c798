"""A dry-run policy through a real Envoy: the would-be deny is allowed, and the upstream is
told through the policy's header."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.client import http
from tests.unit.helpers import write_policy
from tests.unit.test_dry_run import POLICY


def test_dry_run_through_envoy(upstream, envoy_factory, authz_factory, tmp_path: Path) -> None:
    authz = authz_factory(write_policy(tmp_path, POLICY))
    envoy = envoy_factory(authz.port, upstream.port)
    status, _, body = http(envoy.url("/public/x"), "DELETE")
    assert status == 200
    seen = json.loads(body)["headers"]
    assert seen["x-authz-dry-run"] == "deny; status=405; rule=no-delete; reason=rule"
    assert [r["method"] for r in upstream.requests()] == ["DELETE"]
