"""The outcome of one Check, independent of gRPC."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# Stable reason codes: the same string is a log field and (later) a metric label.
RULE = "rule"
DEFAULT = "default"
NO_POLICY = "no_policy"
UNAUTHENTICATED = "unauthenticated"
UNKNOWN_POLICY = "unknown_policy"
EVALUATION_ERROR = "evaluation_error"
INVALID_OUTPUT = "invalid_output"
REQUEST_ERROR = "request_parse_error"
INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True)
class Decision:
    """Allow or deny, why, and what to tell Envoy."""

    allowed: bool
    code: str
    reason: str
    decision_id: str
    status: int = 200
    policy: str | None = None
    rule: str | None = None
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    cached: bool = False  # answered from the decision cache
    would_deny: Decision | None = None  # a dry-run policy's deny, allowed anyway

    def reissued(self, decision_id: str) -> Decision:
        """This decision again, for another request (a decision-cache hit). A shallow copy
        (every field, whatever fields there are) at a fraction of dataclasses.replace."""
        again = copy.copy(self)
        object.__setattr__(again, "decision_id", decision_id)
        object.__setattr__(again, "cached", True)
        return again

    @property
    def outcome(self) -> str:
        """'allow' or 'deny'."""
        return "allow" if self.allowed else "deny"


def deny(
    code: str,
    reason: str,
    decision_id: str,
    status: int = 403,
    policy: str | None = None,
    rule: str | None = None,
) -> Decision:
    """A deny that did not come from a rule's own effect (errors, no policy, ...)."""
    return Decision(False, code, reason, decision_id, status, policy, rule, message=reason)
