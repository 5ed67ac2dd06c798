"""How a deny reaches the client, once it is decided: the RFC 6750 Bearer challenge every
401 carries (and a 403 for missing scopes), the RFC 9728 resource metadata named in it and
answered as a document, and a `deny_as: jsonrpc` policy's deny as the JSON-RPC answer."""

from __future__ import annotations

import dataclasses

from authz.attributes import Attributes
from authz.decision import (
    DEFAULT,
    RESOURCE_METADATA,
    RULE,
    UNAUTHENTICATED,
    Decision,
    client_message_for,
)
from authz.identity.model import MISSING, MULTIPLE, Identity
from authz.identity.protected_resource import ProtectedResource, scope_challenge
from authz.jsonrpc import DEFAULT_CODE, HTTP, deny_reply
from authz.policy.compiler import CompiledConfig, CompiledPolicy

WWW_AUTHENTICATE = "www-authenticate"


def challenge(reason: str) -> str:
    """The RFC 6750 Bearer challenge for a refused credential, `reason` being
    `identity.error` ("" when there is nothing to say: no error code then, RFC 6750 3.1)."""
    if not reason:
        return 'Bearer realm="authz"'
    if reason == MISSING:
        return 'Bearer realm="authz", error_description="missing_credentials"'
    code = "invalid_request" if reason == MULTIPLE else "invalid_token"
    return f'Bearer realm="authz", error="{code}", error_description="{reason}"'


def challenged(config: CompiledConfig, attrs: Attributes, decision: Decision) -> Decision:
    """Every 401 carries a challenge (RFC 9110 11.6.1): a deny with status 401 whose rule
    sets no WWW-Authenticate of its own gets the Bearer challenge for this caller's
    identity. A 403 from a rule with `insufficient_scope` gets the RFC 6750 3.1 challenge.
    For the protected resource, every Bearer challenge names its metadata document
    (RFC 9728 5.1). After the cache: the caller, not the cached decision, decides the text."""
    if decision.allowed or decision.status not in (401, 403):
        return decision
    resource = config.identity.protected_resource
    if resource is not None and not resource.covers(attrs.request.path):
        resource = None
    if decision.status == 403:
        scopes = _insufficient_scope(config, decision)
        if not scopes:
            return decision
        text = scope_challenge(scopes, resource.metadata_url if resource else "")
        added = (*decision.response_headers, (WWW_AUTHENTICATE, text))
        return dataclasses.replace(decision, response_headers=added)
    headers = (*decision.headers, *decision.response_headers)
    if not any(name == WWW_AUTHENTICATE for name, _ in headers):
        added = (*decision.response_headers, (WWW_AUTHENTICATE, challenge(attrs.identity.error)))
        decision = dataclasses.replace(decision, response_headers=added)
    return decision if resource is None else _name_metadata(decision, resource)


def _insufficient_scope(config: CompiledConfig, decision: Decision) -> tuple[str, ...]:
    """The scopes a denying rule declared missing (`insufficient_scope`), else ()."""
    if decision.reason != RULE or decision.would_deny is not None:
        return ()
    policy = config.policy_named(decision.policy or "")
    rule = next((r for r in policy.rules if r.name == decision.rule), None) if policy else None
    return rule.insufficient_scope if rule is not None else ()


def _name_metadata(decision: Decision, resource: ProtectedResource) -> Decision:
    """Add `resource_metadata="..."` to each Bearer challenge that lacks it."""

    def named(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple(
            (n, f'{v}, resource_metadata="{resource.metadata_url}"')
            if n == WWW_AUTHENTICATE and v[:6].lower() == "bearer" and "resource_metadata=" not in v
            else (n, v)
            for n, v in headers
        )

    return dataclasses.replace(
        decision, headers=named(decision.headers), response_headers=named(decision.response_headers)
    )


def metadata_answer(resource: ProtectedResource, decision_id: str) -> Decision:
    """The RFC 9728 metadata document, which authz answers itself: a "deny" with status
    200 and the document as its body, which Envoy passes to the client unchanged."""
    return Decision(
        allowed=False,
        reason=RESOURCE_METADATA,
        message=f"protected resource metadata for {resource.config.resource}",
        decision_id=decision_id,
        status=200,
        response_headers=(("cache-control", "max-age=300"),),
        body=resource.document,
    )


def unauthenticated(policy: CompiledPolicy, identity: Identity, decision_id: str) -> Decision:
    """401 with an RFC 6750 challenge naming why the credential was refused."""
    reason = identity.error or MISSING
    return Decision(
        allowed=False,
        reason=UNAUTHENTICATED,
        message=f"policy '{policy.name}' requires an identity: {reason}",
        decision_id=decision_id,
        status=401,
        policy=policy.name,
        client_message=f"authentication required: {reason}",
        response_headers=((WWW_AUTHENTICATE, challenge(reason)),),
    )


def as_jsonrpc(config: CompiledConfig, attrs: Attributes, decision: Decision) -> Decision:
    """A rule's (or the default's) deny on a `deny_as: jsonrpc` policy, as the JSON-RPC
    answer to the request (authz/jsonrpc.py). After the cache: the answer carries the id of
    this request, which the cache key may not cover."""
    if decision.allowed or decision.reason not in (RULE, DEFAULT) or decision.status == 401:
        return decision
    policy = config.policy_named(decision.policy or "")
    if policy is None:
        return decision
    rule = next((r for r in policy.rules if r.name == decision.rule), None)
    mode = (rule.deny_as if rule is not None else None) or policy.deny_as
    if mode == HTTP:
        return decision
    code = DEFAULT_CODE if rule is None or rule.jsonrpc_code is None else rule.jsonrpc_code
    message = decision.client_message or client_message_for(decision.reason)
    request, body = attrs.request, attrs.body.parsed.value
    reply = deny_reply(
        request.method, request.headers, body, mode, code, message, decision.decision_id
    )
    return decision if reply is None else dataclasses.replace(decision, jsonrpc_body=reply)
