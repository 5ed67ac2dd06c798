"""The outcome of one Check, independent of gRPC, and the one record every output shows.

A `Decision` says allow or deny and why, in three registers:

- `reason`: a stable code (`rule`, `default`, `unauthenticated`, ... below), the same string
  as a metric label, a decision-log field, a span attribute and the dynamic metadata's
  `reason`;
- `message`: human text for operators ("denied by rule 'x': ..."); it may name policies and
  rules, so it goes to logs, spans, metadata and `authz check`, never to the client;
- `client_message`: the `error` of the deny body the client receives; it names no policy or
  rule (a rule's own `message:`, else a generic text per reason).

`record()` renders a decision as `{decision_id, decision, status, policy, rule, reason,
message}` (plus `dry_run` for a dry-run policy's would-be deny); `authz check`, `authz test`,
the decision log, the span and the dynamic metadata all start from it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# Stable reason codes: the same string is a log field, a span attribute and a metric label.
RULE = "rule"
DEFAULT = "default"
NO_POLICY = "no_policy"
UNAUTHENTICATED = "unauthenticated"
UNKNOWN_POLICY = "unknown_policy"
EVALUATION_ERROR = "evaluation_error"
INVALID_OUTPUT = "invalid_output"
REQUEST_ERROR = "request_parse_error"
INTERNAL_ERROR = "internal_error"
CHECK_TIMEOUT = "check_timeout"  # the check ran past its time budget
# authz answered the request itself (the RFC 9728 protected resource metadata document).
RESOURCE_METADATA = "resource_metadata"

# What the client reads when nothing more specific may be said.
_CLIENT_MESSAGES = {
    UNAUTHENTICATED: "authentication required",
    REQUEST_ERROR: "malformed request",
    INTERNAL_ERROR: "internal error",
}
ACCESS_DENIED = "access denied"

REASONS = (
    RULE,
    DEFAULT,
    NO_POLICY,
    UNKNOWN_POLICY,
    UNAUTHENTICATED,
    EVALUATION_ERROR,
    INVALID_OUTPUT,
    REQUEST_ERROR,
    INTERNAL_ERROR,
    CHECK_TIMEOUT,
    RESOURCE_METADATA,
)
# What a config may add to a deny body (`deny_body: {include: [...]}`); by default the client
# learns only the error text and the decision id, never policy or rule names.
DENY_BODY_FIELDS = ("reason", "policy", "rule", "message")


@dataclass(frozen=True)
class Decision:
    """Allow or deny, why (`reason` code, operator `message`, `client_message`), and what to
    tell Envoy (status, headers, metadata)."""

    allowed: bool
    reason: str
    message: str
    decision_id: str
    status: int = 200
    policy: str | None = None
    rule: str | None = None
    client_message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    cached: bool = False  # answered from the decision cache
    would_deny: Decision | None = None  # a dry-run policy's deny, allowed anyway
    # What the client receives instead of the deny body, with `status` (the RFC 9728
    # metadata document, status 200, which Envoy passes on unchanged); "" otherwise.
    body: str = ""
    # A deny on an MCP route sent as the JSON-RPC answer to the request, with HTTP 200
    # instead of `status` (authz/jsonrpc.py); "" for every other deny.
    jsonrpc_body: str = ""

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


def client_message_for(reason: str) -> str:
    """The client's text for a deny that no rule worded."""
    return _CLIENT_MESSAGES.get(reason, ACCESS_DENIED)


def deny(
    reason: str,
    message: str,
    decision_id: str,
    status: int = 403,
    policy: str | None = None,
    rule: str | None = None,
    client_message: str | None = None,
) -> Decision:
    """A deny that did not come from a rule's own effect (errors, no policy, ...)."""
    return Decision(
        False,
        reason,
        message,
        decision_id,
        status,
        policy,
        rule,
        client_message=client_message_for(reason) if client_message is None else client_message,
    )


def record(decision: Decision) -> dict[str, Any]:
    """The decision as every output shows it (see the module docstring)."""
    out: dict[str, Any] = {
        "decision_id": decision.decision_id,
        "decision": decision.outcome,
        "status": decision.status,
        "policy": decision.policy,
        "rule": decision.rule,
        "reason": decision.reason,
        "message": decision.message,
    }
    would = decision.would_deny
    if would is not None:
        out["dry_run"] = {
            "decision": would.outcome,
            "status": would.status,
            "policy": would.policy,
            "rule": would.rule,
            "reason": would.reason,
            "message": would.message,
        }
    return out
