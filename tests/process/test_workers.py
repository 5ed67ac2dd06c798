"""`authz serve --workers N`: N processes on one port, one admin port summing their metrics,
a dead worker replaced, SIGTERM draining them all."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc

from authz._proto.envoy.service.auth.v3 import external_auth_pb2_grpc
from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2_grpc
from authz.request_file import to_check_request
from tests.support import ext_proc
from tests.support.client import scrape
from tests.support.ext_proc import FAKE_AWS_KEY, completion
from tests.support.health import wait_until
from tests.support.paths import EXAMPLE_POLICY
from tests.support.proc import children


def check(target: str) -> None:
    """One allowed Check on a new connection (so the kernel spreads them over the workers)."""
    with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        stub = external_auth_pb2_grpc.AuthorizationStub(ch)
        reply = stub.Check(
            to_check_request({"path": "/public/x", "context": {"policy": "public"}}), timeout=60
        )
        assert reply.status.code == 0


def logged(authz: Any, phase: str | None = None) -> list[dict[str, Any]]:
    """The service's decision log lines (of one phase: None for Check, "response")."""
    lines = [json.loads(x) for x in authz.log_text().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("phase") == phase]


def until_all_answered(
    authz: Any, workers: list[int], call: Any, at_least: int, phase: str | None = None
) -> int:
    """Make `call()` at least `at_least` times, then on until every worker has logged an
    answer (one started late under a loaded machine serves only later). Returns the count."""
    sent = 0
    deadline = time.monotonic() + 120
    while sent < at_least or {x["worker"] for x in logged(authz, phase)} != set(workers):
        assert time.monotonic() < deadline, f"not every worker answered {sent} calls"
        call()
        sent += 1
    return sent


def test_workers_share_the_port_and_the_metrics(authz_factory) -> None:
    authz = authz_factory(EXAMPLE_POLICY, extra_args=("--workers", "2"))
    workers = children(authz.proc.pid)
    assert len(workers) == 2
    sent = until_all_answered(authz, workers, lambda: check(authz.target), 60)
    samples = scrape(authz)
    assert samples["authz_check_duration_seconds_count"] == sent  # summed over the workers
    with urllib.request.urlopen(authz.admin_url("/readyz"), timeout=30) as resp:
        assert json.loads(resp.read()) == {"ready": True, "workers": 2, "alive": 2}


def test_a_dead_worker_is_replaced_and_sigterm_stops_all(authz_factory) -> None:
    authz = authz_factory(EXAMPLE_POLICY, extra_args=("--workers", "2"))
    first = children(authz.proc.pid)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = children(authz.proc.pid)
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.1)
    assert len(now) == 2 and first[0] not in now
    for _ in range(10):
        check(authz.target)
    authz.proc.send_signal(signal.SIGTERM)
    assert authz.proc.wait(30) == 0
    assert all(
        not Path(f"/proc/{pid}").exists()
        or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        for pid in now
    )


def test_every_worker_serves_the_response_path(authz_factory: Any) -> None:
    """ExternalProcessor/Process on the same port as Check, in each of the workers."""
    authz = authz_factory(EXAMPLE_POLICY, extra_args=("--workers", "2"))
    workers = children(authz.proc.pid)
    assert len(workers) == 2
    answer = json.dumps(completion(f"use {FAKE_AWS_KEY}")).encode()

    def process() -> None:
        messages = [
            ext_proc.request_headers(policy="llm-external"),
            ext_proc.response_headers(),
            ext_proc.body(answer),
        ]
        options = [("grpc.use_local_subchannel_pool", 1)]  # a new connection each time
        with grpc.insecure_channel(authz.target, options=options) as channel:
            stub = external_processor_pb2_grpc.ExternalProcessorStub(channel)
            *_, last = stub.Process(iter(messages), timeout=60)
        assert last.immediate_response.status.code == 502

    sent = until_all_answered(authz, workers, process, 30, phase="response")
    wait_until(
        lambda: None if len(logged(authz, "response")) == sent else "not all logged",
        "the response lines were not all logged",
        120,
    )
    samples = scrape(authz)
    denied = (
        'authz_response_decisions_total{decision="deny",policy="llm-external",'
        'rule="credential-in-answer"}'
    )
    assert samples[denied] == sent  # summed over the workers
