"""Hot reload: file changes and SIGHUP swap the config atomically; a broken config is
refused with FILE:LINE:COL and the last good one keeps serving; workers all reload."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from pathlib import Path

import grpc

from authz._proto.envoy.service.auth.v3 import external_auth_pb2_grpc
from authz.reload import fingerprint
from authz.request_file import to_check_request
from tests.support.health import wait_until

ALLOW = """
policies:
  - name: p
    match: "true"
    rules: [{name: open, when: "true", effect: allow}]
"""
DENY = """
policies:
  - name: p
    match: "true"
    rules: [{name: closed, when: "true", effect: deny}]
"""
BROKEN = """
policies:
  - name: p
    match: request.nope == 1
    rules: []
"""
SLOW = """
engine: cel-python
policies:
  - name: p
    match: "true"
    rules:
      - name: slow-open
        when: body.json.items.map(x, x * 2).filter(y, y > 0).size() > 0
        effect: allow
"""


def decide(target: str, body: object = None) -> str:
    """The rule that decided one Check (new connection each time)."""
    with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        stub = external_auth_pb2_grpc.AuthorizationStub(ch)
        reply = stub.Check(
            to_check_request({"method": "POST", "path": "/", "body": body}), timeout=120
        )
    return reply.dynamic_metadata["rule"]


def wait_for_rule(target: str, rule: str, timeout: float = 120, checks: int = 1) -> None:
    """Until `checks` consecutive Checks are decided by `rule`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(decide(target) == rule for _ in range(checks)):
            return
        time.sleep(0.2)
    raise AssertionError(f"rule {rule!r} never decided")


def wait_for_log(authz, text: str, timeout: float = 120) -> None:
    """Until the service has logged `text` (an event, not a window of time)."""
    end = time.monotonic() + timeout
    while text not in authz.log_text():
        if time.monotonic() > end:
            raise AssertionError(f"never logged {text!r}:\n{authz.log_text()[-2000:]}")
        time.sleep(0.05)


def readyz(authz) -> dict:
    """/readyz as JSON."""
    with urllib.request.urlopen(authz.admin_url("/readyz"), timeout=30) as resp:
        return json.loads(resp.read())


def test_file_change_reloads_and_broken_config_is_refused(authz_factory, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ALLOW)
    authz = authz_factory(policy)
    assert decide(authz.target) == "open"
    first = readyz(authz)
    policy.write_text(DENY)
    wait_for_rule(authz.target, "closed")
    second = readyz(authz)
    assert (first["generation"], second["generation"]) == (1, 2)
    assert first["sha256"] != second["sha256"]
    policy.write_text(BROKEN)
    wait_for_log(authz, f"{policy}:4:20: policy 'p' match: 'request' has no field 'nope'")
    assert decide(authz.target) == "closed"  # the last good config keeps serving
    assert readyz(authz)["generation"] == 2
    with urllib.request.urlopen(authz.admin_url("/metrics"), timeout=30) as resp:
        metrics = resp.read().decode()
    assert 'authz_config_reloads_total{result="failure"} 1.0' in metrics
    assert "authz_config_generation 2.0" in metrics


def test_sighup_reloads(authz_factory, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ALLOW)
    authz = authz_factory(policy, extra_args=("--watch-interval", "0"))
    policy.write_text(DENY)
    # not watching: a check after the change still sees the old config, and nothing reloaded
    assert decide(authz.target) == "open"
    assert readyz(authz)["generation"] == 1 and "reloaded" not in authz.log_text()
    authz.proc.send_signal(signal.SIGHUP)
    wait_for_rule(authz.target, "closed")


def test_checks_in_flight_finish_on_their_config(authz_factory, tmp_path: Path) -> None:
    # Slow checks back to back while the config is swapped: the one in flight at the swap
    # finishes on the config it started with (no error, no cancelled call), later ones see
    # the new config, and the answers never go back to the old one.
    policy = tmp_path / "policy.yaml"
    policy.write_text(SLOW)
    authz = authz_factory(policy, extra_args=("--watch-interval", "0"))
    results: list[str] = []
    done = threading.Event()

    def keep_checking() -> None:
        while not done.is_set() or not results or results[-1] != "closed":
            results.append(decide(authz.target, {"items": list(range(1, 4001))}))
            if len(results) > 500:
                return

    client = threading.Thread(target=keep_checking)
    client.start()
    # at least one slow check has been decided on the old config
    wait_until(lambda: None if results else "no check decided", "no check", 120, proc=authz.proc)
    policy.write_text(DENY)
    authz.proc.send_signal(signal.SIGHUP)
    wait_for_log(authz, "reloaded (SIGHUP)")
    done.set()
    client.join(120)
    assert results[0] == "slow-open" and results[-1] == "closed", results
    switched = results.index("closed")
    assert set(results[:switched]) == {"slow-open"} and set(results[switched:]) == {"closed"}


def test_every_worker_reloads(authz_factory, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ALLOW)
    authz = authz_factory(policy, extra_args=("--workers", "2"))
    policy.write_text(DENY)
    # each worker reloads for itself (or, started late under load, loads the new file):
    # wait until a run of checks, spread over both workers, is decided by the new config
    wait_for_rule(authz.target, "closed", checks=20)
    new_hash = fingerprint((str(policy),))
    with urllib.request.urlopen(authz.admin_url("/metrics"), timeout=30) as resp:
        metrics = resp.read().decode()
    assert f'authz_config_info{{sha256="{new_hash}"}} 1.0' in metrics  # summed over workers
    assert "authz_config_generation 2.0" in metrics


def test_a_config_whose_own_tests_fail_is_refused(authz_factory, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ALLOW + "tests:\n  - {name: open, request: {}, expect: {decision: allow}}\n")
    authz = authz_factory(policy)
    policy.write_text(DENY + "tests:\n  - {name: open, request: {}, expect: {decision: allow}}\n")
    wait_for_log(authz, "the config's own tests fail")
    assert decide(authz.target) == "open"
    assert "FAILED" in authz.log_text()
