"""Observability end to end: one denied request lands in Envoy's trace (real OpenTelemetry
tracer, real OTLP receiver), and /metrics counts known traffic through a real Envoy."""

from __future__ import annotations

import json
import time
import urllib.request

from tests.support.client import http, scrape
from tests.support.otlp import OtlpReceiver
from tests.support.paths import EXAMPLE_POLICY
from tests.support.ports import free_port

EXT_AUTHZ_SPAN = "async envoy.service.auth.v3.Authorization.Check egress"


def test_denied_request_is_a_child_of_envoys_span(
    upstream, envoy_factory, authz_factory, otlp_receiver: OtlpReceiver
) -> None:
    authz = authz_factory(EXAMPLE_POLICY, extra_args=("--otlp-endpoint", otlp_receiver.endpoint))
    envoy = envoy_factory(authz.port, upstream.port, otel_port=otlp_receiver.port)
    status, _, body = http(
        envoy.url("/upload/doc"), "POST", b"TOP-SECRET plan", {"content-type": "text/plain"}
    )
    assert status == 422
    decision_id = json.loads(body)["decision_id"]
    check = otlp_receiver.wait_for(lambda s: s.name == "authz.check")[0]
    client = otlp_receiver.wait_for(
        lambda s: s.name == EXT_AUTHZ_SPAN and s.trace_id == check.trace_id, timeout=20
    )[0]
    assert (client.service_name, client.kind_name) == ("envoy", "CLIENT")
    assert check.service_name == "authz" and check.kind_name == "SERVER"
    assert check.parent_span_id == client.span_id  # parented to Envoy's span, same trace
    assert check.attributes["authz.decision"] == "deny"
    assert check.attributes["authz.policy"] == "upload"
    assert check.attributes["authz.rule"] == "forbidden-marker"
    assert check.attributes["authz.reason"] == "rule"
    assert check.attributes["authz.decision_id"] == decision_id
    assert check.attributes["http.request.method"] == "POST"
    assert check.attributes["url.path"] == "/upload/doc"
    children = otlp_receiver.wait_for(lambda s: s.parent_span_id == check.span_id, count=2)
    assert {"authz.body", "authz.evaluate"} <= {s.name for s in children}
    server = otlp_receiver.wait_for(
        lambda s: s.name != EXT_AUTHZ_SPAN and s.span_id == client.parent_span_id, timeout=20
    )
    assert server[0].kind_name == "SERVER" and server[0].service_name == "envoy"
    deadline = time.monotonic() + 120
    while decision_id not in authz.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # the decision log line reaches the file
    lines = [json.loads(x) for x in authz.log_text().splitlines() if x.startswith("{")]
    logged = next(x for x in lines if x["decision_id"] == decision_id)
    assert logged["trace_id"] == check.trace_id and logged["rule"] == "forbidden-marker"


def test_metrics_count_known_traffic(upstream, envoy_factory, authz_factory) -> None:
    authz = authz_factory(EXAMPLE_POLICY)
    envoy = envoy_factory(authz.port, upstream.port)
    for _ in range(3):
        assert http(envoy.url("/public/a"))[0] == 200
    for _ in range(2):
        assert http(envoy.url("/team/a"))[0] == 403
    assert http(envoy.url("/nowhere"))[0] == 403
    samples = scrape(authz)
    allow = 'authz_decisions_total{decision="allow",policy="public",reason="rule",rule="anyone"}'
    deny = 'authz_decisions_total{decision="deny",policy="team",reason="default",rule=""}'
    nopolicy = 'authz_decisions_total{decision="deny",policy="",reason="no_policy",rule=""}'
    assert (samples[allow], samples[deny], samples[nopolicy]) == (3.0, 2.0, 1.0)
    assert samples["authz_check_duration_seconds_count"] == 6.0
    assert samples['authz_check_duration_seconds_bucket{le="1.0"}'] == 6.0
    assert samples['authz_config_reloads_total{result="success"}'] == 1.0
    assert samples["authz_config_generation"] == 1.0
    with urllib.request.urlopen(authz.admin_url("/healthz"), timeout=30) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(authz.admin_url("/readyz"), timeout=30) as resp:
        assert resp.status == 200 and json.loads(resp.read())["ready"] is True


def test_unreachable_collector_drops_spans_not_decisions(
    upstream, envoy_factory, authz_factory
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    authz = authz_factory(EXAMPLE_POLICY, extra_args=("--otlp-endpoint", dead))
    envoy = envoy_factory(authz.port, upstream.port)
    for _ in range(5):
        assert http(envoy.url("/public/a"))[0] == 200
        assert http(envoy.url("/team/a"))[0] == 403
    deadline = time.monotonic() + 120
    dropped = 0.0
    while time.monotonic() < deadline and dropped < 10:
        dropped = scrape(authz).get("authz_trace_spans_dropped_total", 0.0)
        time.sleep(0.5)
    assert dropped >= 10  # every authz.check span of the ten checks (children too)
    assert len(upstream.requests()) == 5
