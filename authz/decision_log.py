"""One JSON line per decision (the observability issue extends this)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time

from authz.attributes import Attributes
from authz.decision import Decision

_log = logging.getLogger("authz.decisions")


def configure(stream: object = sys.stdout) -> None:
    """Send decision lines to a stream as bare JSON."""
    handler = logging.StreamHandler(stream)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(message)s"))
    _log.handlers[:] = [handler]
    _log.setLevel(logging.INFO)
    _log.propagate = False


def record(decision: Decision, attrs: Attributes | None, latency_s: float) -> None:
    """Write the decision record; never raises into the Check path."""
    if not _log.isEnabledFor(logging.INFO):
        return
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "decision_id": decision.decision_id,
        "decision": decision.outcome,
        "status": decision.status,
        "policy": decision.policy,
        "rule": decision.rule,
        "code": decision.code,
        "reason": decision.reason,
        "method": attrs.request.method if attrs else None,
        "path": attrs.request.path if attrs else None,
        "latency_ms": round(latency_s * 1000, 3),
    }
    with contextlib.suppress(Exception):  # a broken log sink must not change a decision
        _log.info(json.dumps(entry, default=str))
