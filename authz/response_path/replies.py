"""The ext_proc messages of one stream: what is read from Envoy's, the replies sent back.

The processing modes are the `mode_override`s a reply may carry: what Envoy sends next
depends on what the policy's response rules read (see stream.py).
"""

from __future__ import annotations

from typing import Any

from authz._proto.envoy.config.core.v3 import base_pb2
from authz._proto.envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from authz._proto.envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2
from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from authz._proto.envoy.type.v3 import http_status_pb2
from authz.response_path.judge import ResponseDecision, deny_body

EXT_AUTHZ = "envoy.filters.http.ext_authz"
Mode = processing_mode_pb2.ProcessingMode
# Nothing more of this response: the policy has no response rules.
SKIP_RESPONSE = Mode(
    response_header_mode=Mode.SKIP, response_body_mode=Mode.NONE, response_trailer_mode=Mode.SKIP
)
# The response headers, never the body: the rules read only the status and headers.
HEADERS_ONLY = Mode(
    response_header_mode=Mode.SEND, response_body_mode=Mode.NONE, response_trailer_mode=Mode.SKIP
)
# Decided at the response headers: no body needed any more.
NO_BODY = Mode(response_body_mode=Mode.NONE, response_trailer_mode=Mode.SKIP)
STREAM_BODY = Mode(response_header_mode=Mode.SEND, response_body_mode=Mode.STREAMED)
BUFFER_BODY = Mode(response_header_mode=Mode.SEND, response_body_mode=Mode.BUFFERED)
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def header(name: str, value: str) -> base_pb2.HeaderValueOption:
    """A header to set, replacing any of that name."""
    # ext_proc reads header values from raw_value (send_header_raw_value, on by default).
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=name, raw_value=value.encode()), append_action=_OVERWRITE
    )


def headers_of(message: pb.HttpHeaders) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ',' (as ext_authz sees them)."""
    joined: dict[str, str] = {}
    for entry in message.headers.headers:
        value = entry.raw_value.decode("utf-8", errors="replace") or entry.value
        key = entry.key.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def check_request(request: pb.ProcessingRequest) -> external_auth_pb2.CheckRequest:
    """The CheckRequest ext_authz would have sent, as far as the stream tells it: the
    request headers and the forwarded dynamic metadata (no body, no peers, no context)."""
    message = request.request_headers
    headers = headers_of(message)
    length = headers.get("content-length", "")
    http = attribute_context_pb2.AttributeContext.HttpRequest(
        id=headers.get("x-request-id", ""),
        method=headers.get(":method", ""),
        path=headers.get(":path", ""),
        host=headers.get(":authority", ""),
        scheme=headers.get(":scheme", ""),
        size=int(length) if length.isdigit() and len(length) < 19 else -1,
        header_map=message.headers,
    )
    attributes = attribute_context_pb2.AttributeContext(
        request=attribute_context_pb2.AttributeContext.Request(http=http)
    )
    if request.HasField("metadata_context"):
        attributes.metadata_context.CopyFrom(request.metadata_context)
    return external_auth_pb2.CheckRequest(attributes=attributes)


def continue_headers(
    request_phase: bool, mode: Any = None, mutation: pb.HeaderMutation | None = None
) -> pb.ProcessingResponse:
    """Go on with the request (or response) headers, with a mutation and a new mode."""
    common = pb.CommonResponse(header_mutation=mutation) if mutation else pb.CommonResponse()
    headers = pb.HeadersResponse(response=common)
    reply = (
        pb.ProcessingResponse(request_headers=headers)
        if request_phase
        else pb.ProcessingResponse(response_headers=headers)
    )
    if mode is not None:
        reply.mode_override.CopyFrom(mode)
    return reply


def body_reply(
    body: bytes | None = None, clear: bool = False, mutation: pb.HeaderMutation | None = None
) -> pb.ProcessingResponse:
    """Go on with a body chunk: as it came, replaced by `body`, or cleared."""
    common = pb.CommonResponse()
    if mutation is not None:
        common.header_mutation.CopyFrom(mutation)
    if clear:
        common.body_mutation.clear_body = True
    elif body is not None:
        common.body_mutation.body = body
    return pb.ProcessingResponse(response_body=pb.BodyResponse(response=common))


def rule_headers(decision: ResponseDecision) -> pb.HeaderMutation:
    """The response headers the deciding rule sets."""
    return pb.HeaderMutation(set_headers=[header(n, v) for n, v in decision.response_headers])


def immediate(decision: ResponseDecision, deny_include: tuple[str, ...]) -> pb.ProcessingResponse:
    """A deny before the client has the status: Envoy answers with the deny body."""
    headers = [("content-type", "application/json"), *decision.response_headers]
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=decision.status),  # type: ignore[arg-type]
            headers=pb.HeaderMutation(set_headers=[header(n, v) for n, v in headers]),
            body=deny_body(decision, deny_include),
            details=f"authz_response_{decision.reason}",
        )
    )
