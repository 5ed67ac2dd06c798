"""Scale-out: Envoy balances across two authz replicas with gRPC health checking (the
cluster shipped in deploy/kubernetes/envoy-cluster.yaml); one replica is killed mid-traffic;
nothing the policy denies is ever allowed and traffic continues on the other replica."""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from authz.server import DRAIN_SECONDS
from tests.support.client import http
from tests.support.envoy import find_cluster
from tests.support.health import wait_until
from tests.support.paths import EXAMPLE_POLICY

KUBE = Path("deploy/kubernetes")


def two_replicas(ports: list[int]) -> Any:
    """A mutate that swaps in the shipped replica cluster, pointed at local replicas."""
    shipped = yaml.safe_load((KUBE / "envoy-cluster.yaml").read_text())

    def mutate(config: dict) -> None:
        cluster = copy.deepcopy(shipped)
        cluster["type"] = "STATIC"
        cluster.pop("dns_lookup_family")
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"] = [
            {
                "endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}
                }
            }
            for port in ports
        ]
        clusters = config["static_resources"]["clusters"]
        clusters[clusters.index(find_cluster(config, "authz"))] = cluster

    return mutate


def test_a_replica_dies_mid_traffic(upstream, envoy_factory, authz_factory) -> None:
    first, second = authz_factory(EXAMPLE_POLICY), authz_factory(EXAMPLE_POLICY)
    envoy = envoy_factory(first.port, upstream.port, mutate=two_replicas([first.port, second.port]))
    results: list[tuple[float, float, str, int]] = []  # (sent, answered, path, status)
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for path in ("/public/ok", "/team/secret"):
                sent = time.monotonic()
                status = http(envoy.url(path))[0]
                results.append((sent, time.monotonic(), path, status))

    def served(replica) -> bool:
        return any(x.startswith("{") for x in replica.log_text().splitlines())

    def public_sent_after(since: float) -> int:
        return sum(1 for t, _, p, _ in list(results) if p == "/public/ok" and t > since)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        # Kill a replica that is taking traffic: Envoy may keep sending every check to
        # one replica (seen: the other took none in a 2-minute run), and killing an idle
        # one would prove nothing.
        wait_until(
            lambda: None if (served(first) or served(second)) and results else "no answer yet",
            "no replica took traffic",
            120,
        )
        victim = first if served(first) else second
        killed = time.monotonic()  # a request answered before this was untouched by the kill
        victim.proc.kill()
        # Until Envoy counts the killed replica out (outlier ejection or health check),
        # calls routed to it fail closed (403, asserted below); then the survivor carries
        # all of them.
        wait_until(
            lambda: (
                None
                if envoy.stat("cluster.authz.membership_healthy") == 1
                else "the killed replica still counted in"
            ),
            "Envoy never counted the killed replica out",
            120,
        )
        gone = time.monotonic()
        wait_until(  # the survivor answers a run of requests sent after that
            lambda: None if public_sent_after(gone) >= 20 else "too few requests yet",
            "no run of requests after the kill",
            120,
        )
    finally:
        stop.set()
        worker.join(120)
    team = [status for _, _, path, status in results if path == "/team/secret"]
    assert team and set(team) == {403}  # never allowed, replica down or not
    assert all(r["path"] != "/team/secret" for r in upstream.requests())
    after = [(round(t - killed, 3), s) for t, _, p, s in results if p == "/public/ok" and t > gone]
    counted_out = round(gone - killed, 3)
    # the surviving replica carries the traffic
    assert after and {s for _, s in after} == {200}, (counted_out, after)
    before = [s for _, done, p, s in results if p == "/public/ok" and done < killed]
    assert before and set(before) == {200}


def test_kubernetes_manifests() -> None:
    docs = list(yaml.safe_load_all((KUBE / "authz.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in docs}
    assert set(kinds) == {"ConfigMap", "Deployment", "Service"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] > DRAIN_SECONDS
    assert kinds["Deployment"]["spec"]["replicas"] >= 2
    assert kinds["Service"]["spec"]["clusterIP"] == "None"
    cluster = yaml.safe_load((KUBE / "envoy-cluster.yaml").read_text())
    assert cluster["health_checks"][0]["grpc_health_check"]["service_name"] == (
        "envoy.service.auth.v3.Authorization"
    )
    assert "outlier_detection" in cluster
