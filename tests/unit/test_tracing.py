"""authz.check spans: where the parent comes from (gRPC metadata, else W3C or B3 headers),
and what the span says; exported over OTLP to a real in-process receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.observability.metrics import Metrics
from authz.observability.tracing import Tracing
from authz.request_file import to_check_request
from authz.service import Checker
from tests.support.otlp import OtlpReceiver
from tests.unit.helpers import compile_policy

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
OTHER_TRACE = "80f198ee56343ba864fe8b2a57d3eff7"
OTHER_SPAN = "e457b5a2e4d86bd1"


@pytest.fixture
def traced(tmp_path: Path, otlp_receiver: OtlpReceiver) -> Checker:
    """A Checker exporting to the receiver."""
    config = compile_policy(
        tmp_path,
        """
        policies:
          - name: p
            match: "true"
            rules:
              - {name: admins, when: 'request.headers["x-role"] == "admin"', effect: allow}
    """,
        "cel-cpp",
    )
    metrics = Metrics()
    checker = Checker(config, Tracing(metrics, endpoint=otlp_receiver.endpoint), metrics)
    yield checker
    checker.tracing.shutdown()


@pytest.mark.parametrize(
    ("metadata", "headers", "trace_id", "parent"),
    [
        ({"traceparent": f"00-{TRACE}-{SPAN}-01"}, {}, TRACE, SPAN),
        ({}, {"traceparent": f"00-{TRACE}-{SPAN}-01"}, TRACE, SPAN),
        (
            {},
            {"x-b3-traceid": OTHER_TRACE, "x-b3-spanid": OTHER_SPAN, "x-b3-sampled": "1"},
            OTHER_TRACE,
            OTHER_SPAN,
        ),
        ({}, {"b3": f"{OTHER_TRACE}-{OTHER_SPAN}-1"}, OTHER_TRACE, OTHER_SPAN),
        # the gRPC call's context wins over the request's own headers
        (
            {"traceparent": f"00-{TRACE}-{SPAN}-01"},
            {"b3": f"{OTHER_TRACE}-{OTHER_SPAN}-1"},
            TRACE,
            SPAN,
        ),
    ],
    ids=["grpc-metadata", "w3c-headers", "b3-multi", "b3-single", "metadata-wins"],
)
def test_parent_context(
    traced: Checker,
    otlp_receiver: OtlpReceiver,
    metadata: dict,
    headers: dict,
    trace_id: str,
    parent: str,
) -> None:
    request = to_check_request({"path": "/x", "headers": {"x-role": "admin", **headers}})
    traced.check(request, metadata)
    traced.tracing.provider.force_flush()  # type: ignore[union-attr]
    span = otlp_receiver.wait_for(lambda s: s.name == "authz.check")[0]
    assert (span.trace_id, span.parent_span_id) == (trace_id, parent)
    assert span.attributes["authz.decision"] == "allow"
    assert span.attributes["authz.rule"] == "admins"


def test_no_parent_starts_a_new_trace_and_errors_are_annotated(
    traced: Checker, otlp_receiver: OtlpReceiver
) -> None:
    decision = traced.check(to_check_request({"path": "/x"}))
    traced.tracing.provider.force_flush()  # type: ignore[union-attr]
    span = otlp_receiver.wait_for(lambda s: s.name == "authz.check")[0]
    assert span.parent_span_id == "" and len(span.trace_id) == 32
    assert span.attributes["authz.reason"] == "evaluation_error"
    assert span.attributes["authz.decision_id"] == decision.decision_id
    evaluate = otlp_receiver.wait_for(lambda s: s.name == "authz.evaluate")[0]
    assert evaluate.parent_span_id == span.span_id


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not Tracing(Metrics()).enabled
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    tracing = Tracing(Metrics())
    assert tracing.enabled
    tracing.shutdown()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not Tracing(Metrics()).enabled


def test_otel_traces_sampler_is_honoured(
    tmp_path: Path, otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    config = compile_policy(
        tmp_path,
        """
        policies:
          - {name: p, match: "true", rules: [{name: r, when: "true", effect: allow}]}
    """,
        "cel-cpp",
    )
    metrics = Metrics()
    checker = Checker(config, Tracing(metrics, endpoint=otlp_receiver.endpoint), metrics)
    assert checker.check(to_check_request({"path": "/"})).allowed
    checker.tracing.provider.force_flush()  # type: ignore[union-attr]
    checker.tracing.shutdown()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    sampled = Checker(config, Tracing(metrics, endpoint=otlp_receiver.endpoint), metrics)
    sampled.check(to_check_request({"path": "/"}))
    sampled.tracing.shutdown()
    spans = otlp_receiver.wait_for(lambda s: s.name == "authz.check")
    assert len(spans) == 1  # only the always_on checker exported
