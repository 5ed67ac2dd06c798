"""How a response's decision is recorded: its span attributes and its decision-log line.

One line per response, `phase: response`, with the request's `decision_id`, so a request's
two decisions (ext_authz, then the response rules) join in the log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from authz.response_path.judge import DENY, ResponseDecision
from authz.response_path.sse import StreamJudge


def span_attributes(
    decision: ResponseDecision, upstream_status: int
) -> dict[str, str | int | bool]:
    """The attributes of the `authz.response` span."""
    counted = decision.counted
    out: dict[str, str | int | bool] = {
        "authz.phase": "response",
        "authz.decision_id": decision.decision_id,
        "authz.policy": decision.policy,
        "authz.rule": counted.rule or "",
        "authz.decision": counted.effect,
        "authz.reason": counted.reason,
        "authz.message": counted.message,
        "http.response.status_code": upstream_status,
    }
    if decision.would is not None:
        out.update({"authz.dry_run": True, "authz.enforced": decision.effect})
    return out


def log_entry(
    decision: ResponseDecision,
    trace_id: str,
    upstream_status: int,
    request_headers: Mapping[str, str],
    seconds: float,
) -> dict[str, Any]:
    """The decision-log line of one response."""
    entry: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        + f".{int(time.time() * 1000) % 1000:03d}Z",
        "phase": "response",
        "decision_id": decision.decision_id,
        "trace_id": trace_id or None,
        "decision": decision.effect,
        "status": decision.status if decision.effect == DENY else upstream_status,
        "policy": decision.policy,
        "rule": decision.rule,
        "reason": decision.reason,
        "message": decision.message,
        "method": request_headers.get(":method"),
        "path": request_headers.get(":path", "").partition("?")[0],
        "upstream_status": upstream_status,
        "latency_ms": round(seconds * 1000, 3),
        "worker": os.getpid(),
    }
    would = decision.would
    if would is not None:
        entry["dry_run"] = {
            "decision": would.effect,
            "status": would.status,
            "rule": would.rule,
            "reason": would.reason,
            "message": would.message,
        }
    return entry


def stream_summary(stream: StreamJudge) -> dict[str, Any]:
    """What the log says of an event stream: how much was judged, redacted, held, cut."""
    return {
        "events": stream.events,
        "redactions": stream.redactions,
        "held_max_chars": stream.held_max,
        "cut": stream.cut is not None,
    }
