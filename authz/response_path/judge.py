"""Response attributes + a policy's response rules -> ResponseDecision. First match decides.

Network-free like decide.py: tests call `judge` with plain values. No rule matching lets
the response pass (the request was allowed; response rules are there to stop or clean what
comes back). Every failure is a deny: a CEL error, a header value that cannot be sent, a
response the service cannot read (unless the policy says `on_unreadable: allow`), a policy
that no longer exists, a bug.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from authz.context import RequestContext
from authz.decide import Refused, header_value, precompute, truth
from authz.decision import (
    ACCESS_DENIED,
    DEFAULT,
    EVALUATION_ERROR,
    INTERNAL_ERROR,
    INVALID_OUTPUT,
    RULE,
    UNKNOWN_POLICY,
)
from authz.errors import EvaluationError
from authz.functions import DetectorMemo
from authz.policy.compiler import CompiledConfig, CompiledPolicy
from authz.policy.response_rules import DEFAULT_STATUS, REDACT, ResponseRules

ALLOW, DENY = "allow", "deny"
UNREADABLE = "unreadable_response"  # a stable code, like those of authz/decision.py
WITHHELD = "response withheld"  # what the client reads when no rule worded the deny


@dataclass(frozen=True)
class ResponseDecision:
    """What happens to one response (or one stream), and why.

    `effect` is allow (pass, with `response_headers`), deny (the client gets `status` and
    `{"error": client_message, "decision_id"}` instead) or redact. `reason` is a stable
    code (`rule`, `default` when no rule matched, `evaluation_error`, `invalid_output`,
    `unreadable_response`, `unknown_policy`, `internal_error`). `would` holds a dry-run
    policy's deny or redact, which is recorded but not enforced."""

    effect: str
    reason: str
    message: str
    decision_id: str
    policy: str
    rule: str | None = None
    status: int = 200
    client_message: str = ""
    response_headers: tuple[tuple[str, str], ...] = ()
    would: ResponseDecision | None = None

    @property
    def counted(self) -> ResponseDecision:
        """The decision as metrics and logs count it (a dry run as it would have been)."""
        return self.would or self


def withheld(
    reason: str, message: str, decision_id: str, policy: str, rule: str | None = None
) -> ResponseDecision:
    """A deny that no rule's own effect produced (errors, unreadable, ...)."""
    return ResponseDecision(
        DENY, reason, message, decision_id, policy, rule, DEFAULT_STATUS, WITHHELD
    )


def unreadable(rules: ResponseRules, why: str, decision_id: str, policy: str) -> ResponseDecision:
    """A response the service cannot read: the policy's `on_unreadable` decides."""
    if rules.unreadable_allow:
        allowed = f"unreadable, allowed: {why}"
        return ResponseDecision(ALLOW, UNREADABLE, allowed, decision_id, policy)
    return withheld(UNREADABLE, f"unreadable response: {why}", decision_id, policy)


def deny_body(decision: ResponseDecision, include: tuple[str, ...] = ()) -> bytes:
    """The JSON the client receives instead of a denied response: `error` and `decision_id`,
    plus the fields the config's `deny_body.include` opts into."""
    body: dict[str, Any] = {
        "error": decision.client_message or ACCESS_DENIED,
        "decision_id": decision.decision_id,
    }
    fields = {
        "reason": decision.reason,
        "policy": decision.policy,
        "rule": decision.rule,
        "message": decision.message,
    }
    body.update({name: fields[name] for name in include if name in fields})
    return json.dumps(body).encode()


def judge(
    config: CompiledConfig,
    policy: CompiledPolicy,
    variables: dict[str, Any],
    decision_id: str,
    memo: DetectorMemo | None = None,
) -> ResponseDecision:
    """Run the policy's response rules over `variables` (the request's roots it reads and
    `response`); first match decides. A dry-run policy's deny or redact is only recorded.
    `memo`: this judgement's detector memo (a fresh one if not given)."""
    rules = policy.response
    if rules is None:
        return ResponseDecision(ALLOW, DEFAULT, "no response rules", decision_id, policy.name)
    ctx = RequestContext(decision_id, config, memo=memo or DetectorMemo())
    decision = _run(ctx, policy.name, rules, variables)
    if policy.dry_run and decision.effect != ALLOW:
        return dry_run(decision)
    return decision


def dry_run(would: ResponseDecision) -> ResponseDecision:
    """A dry-run policy's deny or redact: recorded as it would have been, not enforced."""
    return dataclasses.replace(
        would,
        effect=ALLOW,
        status=200,
        message=f"dry-run: would {would.effect} ({would.message})",
        response_headers=(),
        would=would,
    )


def _run(
    ctx: RequestContext, policy: str, rules: ResponseRules, variables: dict[str, Any]
) -> ResponseDecision:
    decision_id = ctx.decision_id
    if rules.reads_data:
        variables["data"] = ctx.config.data
    try:
        if rules.calls:
            precompute(ctx, rules.calls, variables, strict=True)
        bound = ctx.bind(variables)
    except EvaluationError as exc:
        return withheld(EVALUATION_ERROR, str(exc), decision_id, policy)
    for rule in rules.rules:
        try:
            if not truth(rule.when, bound):
                continue
            headers = tuple((n, header_value(n, e, bound)) for n, e in rule.response_headers)
        except (EvaluationError, Refused) as exc:
            reason = INVALID_OUTPUT if isinstance(exc, Refused) else EVALUATION_ERROR
            said = f"response rule '{rule.name}': {exc}"
            return withheld(reason, said, decision_id, policy, rule.name)
        verbs = {ALLOW: "allowed", DENY: "denied", REDACT: "redacted"}
        said = f": {rule.message}" if rule.message else ""
        deny = rule.effect == DENY
        return ResponseDecision(
            effect=rule.effect,
            reason=RULE,
            message=f"{verbs[rule.effect]} by response rule '{rule.name}'{said}",
            decision_id=decision_id,
            policy=policy,
            rule=rule.name,
            status=rule.status if deny else 200,
            client_message=(rule.message or WITHHELD) if deny else "",
            response_headers=headers,
        )
    return ResponseDecision(ALLOW, DEFAULT, "no response rule matched", decision_id, policy)


def unknown_policy(name: str, decision_id: str) -> ResponseDecision:
    """The request was allowed by a policy the loaded config no longer has (a reload)."""
    return withheld(UNKNOWN_POLICY, f"allowed by unknown policy '{name}'", decision_id, name)


def internal_error(decision_id: str, policy: str) -> ResponseDecision:
    """A bug: fail closed."""
    return withheld(INTERNAL_ERROR, "internal error", decision_id, policy)
