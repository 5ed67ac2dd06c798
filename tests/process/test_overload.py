"""Overload: past --max-concurrent checks in flight a worker refuses at once instead of
queueing (Envoy turning that into a deny: tests/e2e/test_overload.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc

from authz._proto.envoy.service.auth.v3 import external_auth_pb2_grpc
from authz.request_file import to_check_request
from tests.unit.helpers import write_policy

SLOW = """
engine: cel-python
policies:
  - name: public
    match: "true"
    rules:
      - name: slow-open
        when: body.json.items.map(x, x * 2).filter(y, y > 0).size() > 0
        effect: allow
"""
BODY = {"items": list(range(1, 3001))}


def test_checks_past_the_bound_are_refused_at_once(authz_factory, tmp_path: Path) -> None:
    authz = authz_factory(
        write_policy(tmp_path, SLOW), extra_args=("--max-concurrent", "2", "--threads", "2")
    )
    outcomes: list[tuple[str, float]] = []

    def call() -> None:
        started = time.monotonic()
        with grpc.insecure_channel(authz.target) as channel:
            stub = external_auth_pb2_grpc.AuthorizationStub(channel)
            try:
                stub.Check(to_check_request({"method": "POST", "body": BODY}), timeout=60)
                outcomes.append(("ok", time.monotonic() - started))
            except grpc.RpcError as exc:
                outcomes.append((exc.code().name, time.monotonic() - started))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    kinds = sorted(kind for kind, _ in outcomes)
    assert "ok" in kinds and "RESOURCE_EXHAUSTED" in kinds, outcomes
    assert kinds.count("ok") <= 4
