"""Faults through a real Envoy: the service killed under load and restarted, and a JWKS
endpoint that fails or hangs. Envoy denies while authz is away; nothing is forwarded that
the policy did not allow."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import tokens
from tests.support.jwks_server import JwksServer
from tests.test_e2e_envoy import EXAMPLE, http
from tests.unit.helpers import write_policy


def test_killed_under_load_then_restarted(upstream, envoy_factory, authz_factory) -> None:
    authz = authz_factory(EXAMPLE)
    port = authz.port
    envoy = envoy_factory(port, upstream.port)
    results: list[tuple[float, str, int]] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for path in ("/public/ok", "/team/denied"):
                results.append((time.monotonic(), path, http(envoy.url(path))[0]))

    worker = threading.Thread(target=traffic)
    worker.start()
    time.sleep(1)
    authz.proc.kill()
    authz.proc.wait(10)
    time.sleep(1)
    restarted_at = time.monotonic()
    authz_factory(EXAMPLE, port=port)
    deadline = time.monotonic() + 15
    recovered = None
    while time.monotonic() < deadline and recovered is None:
        recovered = next(
            (t for t, p, s in results if p == "/public/ok" and s == 200 and t > restarted_at), None
        )
        time.sleep(0.05)
    stop.set()
    worker.join(30)
    assert recovered is not None, "traffic did not recover after the restart"
    print(f"recovered {recovered - restarted_at:.2f} s after the restart began")
    assert {s for _, p, s in results if p == "/team/denied"} == {403}
    down = [s for t, p, s in results if p == "/public/ok" and restarted_at - 0.9 < t < restarted_at]
    assert down and set(down) == {403}  # while authz was away: denied, not forwarded
    assert all(r["path"] == "/public/ok" for r in upstream.requests())


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    """A JWKS endpoint the test can break."""
    server = JwksServer(tokens.jwks(OLD))
    yield server
    server.close()


OLD, NEW = tokens.rsa_key("k-old"), tokens.rsa_key("k-new")


def test_jwks_endpoint_down_or_slow(
    upstream, envoy_factory, authz_factory, tmp_path: Path, jwks: JwksServer
) -> None:
    policy = write_policy(
        tmp_path,
        f"""
        identity:
          jwt:
            - issuer: {tokens.ISSUER}
              audiences: [{tokens.AUDIENCE}]
              jwks_uri: {jwks.uri}
              fetch_timeout_seconds: 0.3
              min_refresh_interval_seconds: 0
        policies:
          - name: public
            require_identity: true
            rules: [{{name: ok, when: "true", effect: allow}}]
    """,
    )
    authz = authz_factory(policy)
    envoy = envoy_factory(authz.port, upstream.port)

    def get(key: Any) -> tuple[int, dict[str, str]]:
        status, headers, _ = http(
            envoy.url("/public/x"), headers={"authorization": f"Bearer {tokens.mint(key)}"}
        )
        return status, headers

    assert get(OLD)[0] == 200
    for mode in ("fail", "hang"):
        jwks.mode = mode
        status, headers = get(NEW)  # unknown kid: refresh fails or hangs (bounded)
        assert status == 401 and "unknown_key" in headers["www-authenticate"], mode
        assert get(OLD)[0] == 200, mode  # the last good keys keep serving
    jwks.mode = "ok"
    jwks.document = tokens.jwks(OLD, NEW)
    assert get(NEW)[0] == 200  # the endpoint is back: the new key is found
    assert len(upstream.requests()) == 4
