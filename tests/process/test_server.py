"""The service as a process: gRPC health, Check over TCP and unix sockets, graceful stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authz._proto.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from authz.request_file import to_check_request
from tests.support.health import wait_grpc_serving, wait_until
from tests.support.paths import EXAMPLE_POLICY
from tests.unit.helpers import write_policy

SLOW = """
engine: cel-python
policies:
  - name: slow
    match: "true"
    rules:
      - name: heavy
        when: body.json.items.map(x, x * 2).filter(y, y > 0).size() > 0
        effect: allow
"""


def serve_command(config: Path, *args: str) -> list[str]:
    """The `authz serve` command line for a config."""
    return [
        sys.executable,
        "-m",
        "authz",
        "serve",
        "--config",
        str(config),
        "--admin-listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        *args,
    ]


def check(target: str, request: dict) -> external_auth_pb2.CheckResponse:
    """One Check call over a fresh channel."""
    with grpc.insecure_channel(target) as channel:
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        return stub.Check(to_check_request(request), timeout=120)


# The two server models: grpc.aio (the default) and a thread pool (`--threads N`).
MODELS = pytest.mark.parametrize("model", [(), ("--threads", "2")], ids=["aio", "threads"])


@MODELS
def test_health_and_check_over_tcp(authz_factory, model: tuple[str, ...]) -> None:
    authz = authz_factory(EXAMPLE_POLICY, extra_args=model)
    assert ("asyncio" if not model else "2 threads") in authz.log_text()
    with grpc.insecure_channel(authz.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "envoy.service.auth.v3.Authorization"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    allowed = check(authz.target, {"path": "/public/a", "context": {"policy": "public"}})
    assert allowed.status.code == 0 and allowed.HasField("ok_response")
    denied = check(authz.target, {"path": "/team/a", "context": {"policy": "team"}})
    assert denied.status.code == 7 and denied.denied_response.status.code == 403
    # the decision log line names the deny and its reason (written before the answer)
    lines = [json.loads(x) for x in authz.log_text().splitlines() if x.startswith("{")]
    assert any(x["decision"] == "deny" and "default deny" in x["message"] for x in lines)


def test_unix_socket_listener(tmp_path: Path) -> None:
    sock = tmp_path / "authz.sock"
    proc = subprocess.Popen(
        serve_command(EXAMPLE_POLICY, "--listen", f"unix:{sock}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_grpc_serving(f"unix:{sock}", 20)
        reply = check(f"unix:{sock}", {"path": "/public/", "context": {"policy": "public"}})
        assert reply.status.code == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def in_flight(authz) -> int:
    """The checks the service is deciding, from /readyz."""
    with urllib.request.urlopen(authz.admin_url("/readyz"), timeout=30) as resp:
        return json.load(resp)["in_flight"]


@MODELS
def test_sigterm_drains_in_flight_checks_then_exits_0(
    authz_factory, tmp_path: Path, model: tuple[str, ...]
) -> None:
    log = tmp_path / "decisions.jsonl"
    authz = authz_factory(
        write_policy(tmp_path, SLOW), extra_args=(*model, "--decision-log", str(log))
    )
    request = {"method": "POST", "body": {"items": list(range(1, 3001))}}
    results: list[object] = []

    def call() -> None:
        try:
            results.append(check(authz.target, request))
        except grpc.RpcError as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(
        lambda: None if in_flight(authz) else "none", "no check in flight", 120, proc=authz.proc
    )
    authz.proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(120)
    assert authz.proc.wait(60) == 0
    # Every check the service took was answered (at least the one in flight at SIGTERM);
    # a call that reached it only after the stop was refused at the door, never cut short.
    decided = len(log.read_text().splitlines())
    answered = [r for r in results if isinstance(r, external_auth_pb2.CheckResponse)]
    refused = [r for r in results if isinstance(r, grpc.RpcError)]
    assert len(results) == 4 and decided >= 1
    assert len(answered) == decided and all(r.status.code == 0 for r in answered), results
    assert all(r.code() == grpc.StatusCode.UNAVAILABLE for r in refused), refused


def test_broken_config_refuses_to_start(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path, "policies:\n  - name: p\n    match: request.nope\n    rules: []\n"
    )
    done = subprocess.run(
        serve_command(path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{path}:3:20: policy 'p' match: 'request' has no field 'nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            serve_command(EXAMPLE_POLICY, "--listen", f"127.0.0.1:{port}"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_decision_log_to_a_file(authz_factory, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    authz = authz_factory(EXAMPLE_POLICY, extra_args=("--decision-log", str(log)))
    check(authz.target, {"path": "/team/a", "context": {"policy": "team"}})
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["policy"], x["decision"], x["reason"]) for x in lines] == [
        ("team", "deny", "default")
    ]
    assert not any(x.startswith("{") for x in authz.log_text().splitlines())
