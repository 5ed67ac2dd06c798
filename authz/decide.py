"""Attributes + compiled config -> Decision. First match decides; every failure denies.

This is the network-free seam: tests and `authz check` call `decide` directly; the gRPC
service only adds the transport around it. A model the config loads (injection_model) scores
on its own pool: `decide_steps` yields a ModelPending meanwhile, which the service awaits on
its event loop; `decide` waits for it on the calling thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Generator
from typing import Any, TypeVar

from authz.attributes import Attributes
from authz.context import RequestContext
from authz.decision import (
    ACCESS_DENIED,
    DEFAULT,
    EVALUATION_ERROR,
    INVALID_OUTPUT,
    NO_POLICY,
    REQUEST_ERROR,
    RULE,
    UNKNOWN_POLICY,
    Decision,
    deny,
)
from authz.deny_forms import as_jsonrpc, challenged, metadata_answer, unauthenticated
from authz.detectors.classifier import ModelPending, Scoring
from authz.errors import CheckTimeout, EvaluationError, RequestError
from authz.policy.compiler import (
    CompiledConfig,
    CompiledExpr,
    CompiledPolicy,
    CompiledRule,
)
from authz.policy.engine.values import format_double

ROUTE_POLICY_KEY = "policy"
_FORBIDDEN_IN_HEADER = ("\r", "\n", "\0")
T = TypeVar("T")
Steps = Generator[ModelPending, None, T]  # yields while a model scores; returns T


class Refused(Exception):
    """A rule's output cannot be sent (a header value that is not a clean string)."""


def truth(expr: CompiledExpr, bound: Any) -> bool:
    value = expr.program.evaluate(bound)
    if not isinstance(value, bool):
        raise EvaluationError(f"expected a bool, got {type(value).__name__}")
    return value


def header_value(name: str, expr: CompiledExpr, bound: Any) -> str:
    value = expr.program.evaluate(bound)
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, float):
        value = format_double(value)  # as string(x) prints it, on both engines
    elif isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise Refused(f"header '{name}' must be a string, got {type(value).__name__}")
    if any(c in value for c in _FORBIDDEN_IN_HEADER):
        raise Refused(f"header '{name}' value contains CR, LF or NUL")
    return value


def _select(
    config: CompiledConfig, context: dict[str, str], bound: Any, decision_id: str
) -> CompiledPolicy | Decision:
    """The route's named policy, else the first policy whose `match` is true."""
    named = context.get(ROUTE_POLICY_KEY)
    if named:
        policy = config.policy_named(named)
        if policy is None:
            return deny(UNKNOWN_POLICY, f"route selects unknown policy '{named}'", decision_id)
        return policy
    for policy in config.policies:
        if policy.match is None:
            continue
        try:
            if truth(policy.match, bound):
                return policy
        except EvaluationError as exc:
            return deny(
                EVALUATION_ERROR,
                f"policy '{policy.name}' match: {exc}",
                decision_id,
                policy=policy.name,
            )
    return deny(NO_POLICY, "no policy selected for this request", decision_id)


def _apply(policy: CompiledPolicy, rule: CompiledRule, bound: Any, decision_id: str) -> Decision:
    """The effect of the rule that matched, with its CEL-valued outputs computed."""
    try:
        headers = tuple((n, header_value(n, e, bound)) for n, e in rule.headers)
        response = tuple((n, header_value(n, e, bound)) for n, e in rule.response_headers)
        metadata = {k: e.program.evaluate(bound) for k, e in rule.metadata}
    except (EvaluationError, Refused) as exc:
        reason = INVALID_OUTPUT if isinstance(exc, Refused) else EVALUATION_ERROR
        return deny(
            reason, f"rule '{rule.name}': {exc}", decision_id, policy=policy.name, rule=rule.name
        )
    verb = "allowed" if rule.allow else "denied"
    said = f": {rule.message}" if rule.message else ""
    return Decision(
        allowed=rule.allow,
        reason=RULE,
        message=f"{verb} by rule '{rule.name}'{said}",
        decision_id=decision_id,
        status=200 if rule.allow else rule.status or 403,
        policy=policy.name,
        rule=rule.name,
        client_message=rule.message or ("" if rule.allow else ACCESS_DENIED),
        headers=headers,
        remove_headers=rule.remove_headers if rule.allow else (),
        response_headers=response,
        metadata=metadata,
    )


def run_steps(steps: Generator[Any, None, T]) -> T:
    """Drive `steps` on this thread, waiting (bounded) for each pending key fetch or
    scoring it yields."""
    try:
        pending = next(steps)
        while True:
            pending.wait()
            pending = steps.send(None)
    except StopIteration as done:
        return done.value


async def await_steps(steps: Generator[Any, None, T]) -> T:
    """As `run_steps`, on an event loop: each pending fetch or scoring is awaited (bounded
    by its own timeout), so other requests go on; its outcome is read when `steps` asks
    again."""
    try:
        pending = next(steps)
        while True:
            with contextlib.suppress(Exception):
                fetch = asyncio.wrap_future(pending.fetch)
                await asyncio.wait_for(asyncio.shield(fetch), pending.timeout)
            pending = steps.send(None)
    except StopIteration as done:
        return done.value


def decide(config: CompiledConfig, attrs: Attributes, decision_id: str) -> Decision:
    """Select a policy, evaluate its rules in order, and return the first match's effect."""
    return run_steps(decide_steps(RequestContext(decision_id, config, attrs)))


def decide_steps(ctx: RequestContext) -> Steps[Decision]:
    """As `decide`, for a request's context (its attributes read), yielding while a model
    scores (the caller waits, then sends None)."""
    config, attrs, decision_id = ctx.config, ctx.attrs, ctx.decision_id
    assert attrs is not None
    resource = config.identity.protected_resource
    if resource is not None and resource.is_metadata_request(
        attrs.request.method, attrs.request.path
    ):
        return metadata_answer(resource, decision_id)
    named = config.policy_named(attrs.context.get(ROUTE_POLICY_KEY, ""))
    key = None
    if config.cache is not None and named is not None:
        key = config.cache.key(named.name, named.cache_paths, attrs)
        cached = config.cache.get(key, decision_id)
        if cached is not None:
            return challenged(config, attrs, as_jsonrpc(config, attrs, cached))
    # A route-selected policy needs only what its own expressions read (a chat route never
    # builds the MCP view); selection by `match` may run any policy.
    reads = named.reads if named is not None else config.reads
    try:
        variables = attrs.variables(reads)
    except RequestError as exc:  # e.g. a body holding NUL that a policy would read
        return deny(REQUEST_ERROR, f"malformed request: {exc}", decision_id, status=400)
    if any(root == "data" for root, _ in reads):
        variables["data"] = config.data
    decision = yield from _evaluate(ctx, variables, named)
    if ctx.memo.timed_out:  # a detector called from CEL stopped at the deadline: not cached
        raise CheckTimeout(ctx.memo.timed_out)
    # A model's timeout or full queue passes: such a deny is not remembered.
    transient = config.functions.model is not None and decision.reason == EVALUATION_ERROR
    if key is not None and config.cache is not None and not transient:
        config.cache.put(key, decision)
    return challenged(config, attrs, as_jsonrpc(config, attrs, decision))


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        in_map = isinstance(value, dict) and isinstance(part, str) and part in value
        in_list = (
            isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value)
        )
        if in_map or in_list:
            value = value[part]
        else:
            raise LookupError(part)
    return value


def precompute(
    ctx: RequestContext, wanted: frozenset[str], variables: dict[str, Any], strict: bool = False
) -> None:
    """As `precompute_steps`, waiting on this thread. Not `strict`: a score the model could
    not give is left out (for `--explain`, which shows the expressions reading it as errors)."""
    run_steps(precompute_steps(ctx, wanted, variables, strict=strict))


def precompute_steps(
    ctx: RequestContext, wanted: frozenset[str], variables: dict[str, Any], strict: bool = True
) -> Steps[None]:
    """Detector results the expressions read as `_fn[id]`. A path that does not resolve is
    left out, so only an expression that reads it fails (as the call itself would have).
    A model's scores are started together on its pool, then awaited (one yield); one that
    did not come (timeout, full queue, failure) raises EvaluationError when `strict`. The
    results go to the context's `precomputed`."""
    results = ctx.precomputed = ctx.precomputed if ctx.precomputed is not None else {}
    scorings: dict[str, Scoring] = {}
    functions, memo = ctx.config.functions, ctx.memo
    for ident in sorted(wanted - results.keys()):
        function, path = ctx.config.calls[ident]  # type: ignore[index]
        try:
            value = _at(variables, path)
        except LookupError:
            continue
        if function not in functions.deferred:
            results[ident] = functions.call(memo, function, value)
            continue
        try:
            scorings[ident] = functions.submit(memo, function, value)
        except EvaluationError:
            if strict:
                _cancel(scorings)
                raise
    if any(not s.future.done() for s in scorings.values()):
        yield ModelPending(list(scorings.values()))
    for ident, scoring in scorings.items():
        try:
            results[ident] = scoring.result()
        except EvaluationError:
            if strict:
                _cancel(scorings)
                raise


def _cancel(scorings: dict[str, Scoring]) -> None:
    """Drop scorings no one will read (one still queued never runs)."""
    for scoring in scorings.values():
        scoring.future.cancel()


def _evaluate(
    ctx: RequestContext, variables: dict[str, Any], named: CompiledPolicy | None
) -> Steps[Decision]:
    """Bind the variables, select the policy and run its rules. Detector results are
    computed for the policy that decides (and, before that, for `match` expressions); one
    that fails (a model's timeout) is an evaluation_error deny like any CEL error."""
    config, attrs, decision_id = ctx.config, ctx.attrs, ctx.decision_id
    assert attrs is not None
    first = named.calls if named is not None else config.match_calls
    policy = named
    try:
        if first:
            yield from precompute_steps(ctx, first, variables)
        bound = ctx.bind(variables)
        selected = _select(config, attrs.context, bound, decision_id)
        if isinstance(selected, Decision):
            return selected
        policy = selected
        if named is None and selected.calls - first:
            yield from precompute_steps(ctx, selected.calls, variables)
            bound = ctx.bind(variables)
    except EvaluationError as exc:
        name = policy.name if policy is not None else None
        failed = deny(EVALUATION_ERROR, str(exc), decision_id, policy=name)
        return _dry_run(policy, failed) if policy is not None and policy.dry_run else failed
    decision = _run_policy(selected, attrs, bound, decision_id)
    return _dry_run(selected, decision) if selected.dry_run and not decision.allowed else decision


def _dry_run(policy: CompiledPolicy, would: Decision) -> Decision:
    """A dry-run policy's deny, recorded as it would have been, but allowed."""
    headers = ()
    if policy.dry_run_header:
        note = f"deny; status={would.status}; rule={would.rule or ''}; reason={would.reason}"
        headers = ((policy.dry_run_header, note),)
    return dataclasses.replace(
        would,
        allowed=True,
        status=200,
        message=f"dry-run: would deny ({would.message})",
        headers=headers,
        remove_headers=(),
        response_headers=(),
        would_deny=would,
    )


def _run_policy(
    policy: CompiledPolicy, attrs: Attributes, bound: Any, decision_id: str
) -> Decision:
    """The selected policy's rules, first match deciding."""
    if policy.require_identity and not attrs.identity.authenticated:
        return unauthenticated(policy, attrs.identity, decision_id)
    if policy.first is not None:  # one engine call; on any failure, rule by rule below
        try:
            index = policy.first.evaluate(bound)
        except EvaluationError:
            index = None
        if type(index) is int and -1 <= index < len(policy.rules):
            if index >= 0:
                return _apply(policy, policy.rules[index], bound, decision_id)
            return _default(policy, decision_id)
    for rule in policy.rules:
        try:
            matched = truth(rule.when, bound)
        except EvaluationError as exc:
            return deny(
                EVALUATION_ERROR,
                f"rule '{rule.name}': {exc}",
                decision_id,
                policy=policy.name,
                rule=rule.name,
            )
        if matched:
            return _apply(policy, rule, bound, decision_id)
    return _default(policy, decision_id)


def _default(policy: CompiledPolicy, decision_id: str) -> Decision:
    """No rule matched: the policy's default."""
    if policy.default_allow:
        return Decision(
            True,
            DEFAULT,
            f"no rule matched; policy '{policy.name}' default allow",
            decision_id,
            policy=policy.name,
        )
    return deny(
        DEFAULT,
        f"no rule matched; policy '{policy.name}' default deny",
        decision_id,
        status=policy.default_status,
        policy=policy.name,
    )
