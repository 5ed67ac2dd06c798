"""Every Prometheus instrument the service exports, declared in one place.

Names follow Prometheus conventions: `authz_` prefix, `_total` for counters, `_seconds`
for durations. The reason label uses the same stable codes as the decision log and the
dynamic metadata (see authz.decision).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# 100 µs to 1 s, including 5, 10, 25 and 50 ms.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
ERROR_CODES = frozenset(
    {"evaluation_error", "invalid_output", "request_parse_error", "internal_error", "check_timeout"}
)


class Metrics:
    """The service's instruments, in their own registry (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # decisions' labelled children by label values (policy and rule names come from the
        # config, so the set is bounded by it)
        self._decided: dict[tuple[str, str, str, str], Any] = {}
        self._check_instruments()
        self._config_instruments()
        self._runtime_instruments()

    def _check_instruments(self) -> None:
        """Decisions and what they took: by policy, rule and outcome, on both paths."""
        self.decisions = Counter(
            "authz_decisions_total",
            "Decisions by policy, rule and outcome.",
            ["policy", "rule", "decision", "reason"],
            registry=self.registry,
        )
        self.check_seconds = Histogram(
            "authz_check_duration_seconds",
            "Time to decide one Check, in the service.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.evaluation_errors = Counter(
            "authz_evaluation_errors_total",
            "Checks that ended in an error deny, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.dry_run_allowed = Counter(
            "authz_dry_run_allowed_total",
            "Requests a dry-run policy would have denied and let through.",
            ["policy"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "authz_decision_cache_hits_total",
            "Checks answered from the decision cache.",
            registry=self.registry,
        )
        self.response_decisions = Counter(
            "authz_response_decisions_total",
            "Responses judged by response rules, by policy, rule and outcome (allow, deny,"
            " redact; a dry run as it would have been).",
            ["policy", "rule", "decision"],
            registry=self.registry,
        )

    def _config_instruments(self) -> None:
        """The config being served, and its reloads."""
        self.config_reloads = Counter(
            "authz_config_reloads_total",
            "Config loads by result (success or failure).",
            ["result"],
            registry=self.registry,
        )
        self.config_generation = Gauge(
            "authz_config_generation",
            "Generation of the config being served (1 = first).",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.config_info = Gauge(
            "authz_config_info",
            "1 for the SHA-256 of the config files being served (the max over workers).",
            ["sha256"],
            registry=self.registry,
            multiprocess_mode="max",
        )

    def _runtime_instruments(self) -> None:
        """The machinery around a check: spans, detector scans, the event loop's lag."""
        self.spans_dropped = Counter(
            "authz_trace_spans_dropped_total",
            "Spans the exporter could not deliver.",
            registry=self.registry,
        )
        self.detector_runs = Counter(
            "authz_detector_runs_total",
            "Detector scans run (secrets, pii, injection, redact).",
            registry=self.registry,
        )
        self.loop_lag = Gauge(
            "authz_event_loop_lag_seconds",
            "How late the worker's event loop ran a timer: the wait of a check queued behind"
            " others (the max over workers).",
            registry=self.registry,
            multiprocess_mode="max",
        )

    def observe(
        self, policy: str | None, rule: str | None, outcome: str, reason: str, seconds: float
    ) -> None:
        """Count one decision and its latency."""
        key = (policy or "", rule or "", outcome, reason)
        counter = self._decided.get(key)
        if counter is None:  # labels() validates and locks: once per label set, not per call
            counter = self._decided[key] = self.decisions.labels(*key)
        counter.inc()
        self.check_seconds.observe(seconds)
        if reason in ERROR_CODES:
            self.evaluation_errors.labels(reason).inc()

    def exposition(self) -> bytes:
        """The text format for /metrics: this process's registry, or, when worker processes
        share a PROMETHEUS_MULTIPROC_DIR, the sum over all of them."""
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry)
