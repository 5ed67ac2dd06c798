"""Decision -> Envoy CheckResponse."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from authz._proto.envoy.config.core.v3 import base_pb2
from authz._proto.envoy.service.auth.v3 import external_auth_pb2
from authz._proto.envoy.type.v3 import http_status_pb2
from authz.decision import DENY_BODY_FIELDS, Decision, client_message_for, record

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _options(headers: tuple[tuple[str, str], ...]) -> list[base_pb2.HeaderValueOption]:
    # Overwrite, never append: a client must not be able to pre-set a header a policy sets.
    return [
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=name, value=value), append_action=_OVERWRITE
        )
        for name, value in headers
    ]


def _plain(value: Any) -> Any:
    """A value Struct can hold (CEL may hand back bytes or other scalars)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def dynamic_metadata(decision: Decision) -> struct_pb2.Struct:
    """What Envoy records under the ext_authz filter's namespace for this request: the rule's
    `metadata`, then the decision record (`policy`/`rule` are "" when there is none)."""
    struct = struct_pb2.Struct()
    struct.update(_plain(decision.metadata))
    fields = record(decision)
    would = fields.pop("dry_run", None)
    if would is not None:
        struct.update(
            {
                "dry_run": True,
                "would_decision": would["decision"],
                "would_status": would["status"],
                "would_rule": would["rule"] or "",
                "would_reason": would["reason"],
            }
        )
    struct.update({k: "" if v is None else v for k, v in fields.items()})
    return struct


def deny_body(decision: Decision, include: tuple[str, ...] = ()) -> str:
    """The JSON body a denied client receives: `error` and `decision_id`, plus the record
    fields the config opts into."""
    body: dict[str, Any] = {
        "error": decision.client_message or client_message_for(decision.reason),
        "decision_id": decision.decision_id,
    }
    fields = record(decision)
    body.update({name: fields[name] for name in include if name in DENY_BODY_FIELDS})
    return json.dumps(body)


def to_check_response(
    decision: Decision, include: tuple[str, ...] = ()
) -> external_auth_pb2.CheckResponse:
    """Build the CheckResponse Envoy acts on; `include`: record fields the deny body shows."""
    metadata = dynamic_metadata(decision)
    if decision.allowed:
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=code_pb2.OK),
            ok_response=external_auth_pb2.OkHttpResponse(
                headers=_options(decision.headers),
                headers_to_remove=list(decision.remove_headers),
                response_headers_to_add=_options(decision.response_headers),
            ),
            dynamic_metadata=metadata,
        )
    code = code_pb2.UNAUTHENTICATED if decision.status == 401 else code_pb2.PERMISSION_DENIED
    # On a deny, a rule's headers go to the client along with its response headers.
    headers = (("content-type", "application/json"), *decision.headers, *decision.response_headers)
    # An MCP route's deny answered in JSON-RPC goes out as HTTP 200 (authz/jsonrpc.py).
    status = 200 if decision.jsonrpc_body else decision.status
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code, message=decision.client_message),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=status),  # type: ignore[arg-type]
            headers=_options(headers),
            body=decision.jsonrpc_body or decision.body or deny_body(decision, include),
        ),
        dynamic_metadata=metadata,
    )
