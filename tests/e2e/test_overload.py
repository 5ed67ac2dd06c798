"""Overload through a real Envoy: a worker that refuses a check, or a check slower than
Envoy's timeout, is a deny (status_on_error), never an allow."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.process.test_overload import BODY, SLOW
from tests.support.client import http
from tests.support.envoy import EXT_PROC_FILTER, remove_http_filter
from tests.unit.helpers import write_policy


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
    # ext_authz alone: with the response path on, Envoy's own 403 would be sent to the same
    # busy authz for judging and end as ext_proc's 504 instead (still never forwarded).
    envoy = envoy_factory(
        authz.port, upstream.port, mutate=lambda c: remove_http_filter(c, EXT_PROC_FILTER)
    )  # ext_authz timeout: 1 s
    # under the 64 KiB Envoy forwards, and several seconds of cel-python work
    slow_body = str({"items": list(range(1, 9001))}).replace("'", '"').encode()
    assert len(slow_body) < 65536
    status, _, _ = http(
        envoy.url("/public/x"), "POST", slow_body, {"content-type": "application/json"}
    )
    assert status == 403 and upstream.requests() == []
    assert envoy.stat("http.ingress.ext_authz.error") == 1  # Envoy's timeout, not a policy deny
