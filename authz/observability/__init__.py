"""Cross-cutting: tracing (OpenTelemetry), metrics (Prometheus), the decision log and the
admin HTTP port that serves /metrics, /healthz and /readyz."""
