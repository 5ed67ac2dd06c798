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
    results: list[tuple[float, str, int]] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            for path in ("/public/ok", "/team/secret"):
                started = time.monotonic()  # when the request was sent
                results.append((started, path, http(envoy.url(path))[0]))

    def served(replica) -> bool:
        return any(x.startswith("{") for x in replica.log_text().splitlines())

    def answered_after(since: float) -> int:
        return sum(1 for t, p, _ in list(results) if p == "/public/ok" and t > since)

    worker = threading.Thread(target=traffic)
    worker.start()
    deadline = time.monotonic() + 30
    while not (served(first) and served(second)) and time.monotonic() < deadline:
        time.sleep(0.05)  # both replicas take traffic before the kill
    first.proc.kill()
    killed = time.monotonic()
    # Until Envoy counts the killed replica out (outlier ejection or health check), calls
    # routed to it fail closed (403, asserted below); from then on the survivor carries all.
    deadline = killed + 10
    while envoy.stat("cluster.authz.membership_healthy") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    gone = time.monotonic()
    deadline = gone + 30
    while answered_after(gone) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)  # the survivor answers a run of requests sent after that
    stop.set()
    worker.join(30)
    team = [status for _, path, status in results if path == "/team/secret"]
    assert team and set(team) == {403}  # never allowed, replica down or not
    assert all(r["path"] != "/team/secret" for r in upstream.requests())
    after = [(round(t - killed, 3), s) for t, p, s in results if p == "/public/ok" and t > gone]
    counted_out = round(gone - killed, 3)
    # the surviving replica carries the traffic
    assert after and {s for _, s in after} == {200}, (counted_out, after)
    before = [s for t, p, s in results if p == "/public/ok" and t < killed]
    assert before and set(before) == {200}
    served = [x for x in second.log_text().splitlines() if x.startswith("{")]
    assert served  # both replicas took traffic before the kill


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
