"""Overload: past --max-concurrent checks in flight a worker refuses at once instead of
queueing, and Envoy turns that into a deny (status_on_error), never an allow."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc

from authz._proto.envoy.service.auth.v3 import external_auth_pb2_grpc
from authz.request_file import to_check_request
from tests.test_e2e_envoy import http
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


def test_envoy_denies_when_the_service_refuses(
    upstream, envoy_factory, authz_factory, tmp_path: Path
) -> None:
    authz = authz_factory(
        write_policy(tmp_path, SLOW), extra_args=("--max-concurrent", "1", "--threads", "1")
    )
    envoy = envoy_factory(authz.port, upstream.port)
    body = str(BODY).replace("'", '"').encode()
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                http(envoy.url("/public/x"), "POST", body, {"content-type": "application/json"})[0]
            )
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert 403 in results  # refused or timed out at Envoy: denied, never forwarded
    assert len(upstream.requests()) == results.count(200)


def test_a_check_slower_than_envoys_timeout_is_a_deny(
    upstream, envoy_factory, authz_factory, tmp_path: Path
) -> None:
    authz = authz_factory(write_policy(tmp_path, SLOW))
    envoy = envoy_factory(authz.port, upstream.port)  # ext_authz timeout: 1 s
    # under the 64 KiB Envoy forwards, and several seconds of cel-python work
    slow_body = str({"items": list(range(1, 9001))}).replace("'", '"').encode()
    assert len(slow_body) < 65536
    status, _, _ = http(
        envoy.url("/public/x"), "POST", slow_body, {"content-type": "application/json"}
    )
    assert status == 403 and upstream.requests() == []
    assert envoy.stat("http.ingress.ext_authz.error") == 1  # Envoy's timeout, not a policy deny
