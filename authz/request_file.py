"""A request described in JSON (for `authz check` and policy tests) -> CheckRequest.

Shape: {"method", "path" (may hold ?query), "host", "scheme", "protocol", "id", "headers":
{name: value}, "body": text or any JSON value (sent as JSON text), "source": {"address",
"port", "principal", "certificate" (URL-encoded PEM, as Envoy sends it)}, "destination":
{...}, "context": {key: value}, "metadata": {namespace: {...}}}. Every key is optional.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import struct_pb2

from authz._proto.envoy.config.core.v3 import address_pb2
from authz._proto.envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2
from authz.errors import RequestError

KEYS = {
    "method",
    "path",
    "host",
    "scheme",
    "protocol",
    "id",
    "headers",
    "body",
    "source",
    "destination",
    "context",
    "metadata",
}
_Ctx = attribute_context_pb2.AttributeContext


def _peer(raw: Any, what: str) -> _Ctx.Peer:
    if raw is None:
        return _Ctx.Peer()
    if not isinstance(raw, dict):
        raise RequestError(f"{what} must be an object with address, port, principal")
    sock = address_pb2.SocketAddress(
        address=str(raw.get("address", "")), port_value=int(raw.get("port", 0))
    )
    return _Ctx.Peer(
        address=address_pb2.Address(socket_address=sock),
        principal=str(raw.get("principal", "")),
        certificate=str(raw.get("certificate", "")),
    )


def _strings(raw: Any, what: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise RequestError(f"{what} must be an object of string values")
    return {str(k): v for k, v in raw.items()}


def to_check_request(raw: Any) -> external_auth_pb2.CheckRequest:
    """Build the CheckRequest Envoy would have sent; raises RequestError on a bad shape."""
    if not isinstance(raw, dict):
        raise RequestError("a request must be a JSON object")
    unknown = set(raw) - KEYS
    if unknown:
        raise RequestError(f"unknown request keys: {', '.join(sorted(unknown))}")
    headers = {k.lower(): v for k, v in _strings(raw.get("headers"), "headers").items()}
    body = raw.get("body")
    if body is None:
        body_bytes = b""
    elif isinstance(body, str):
        body_bytes = body.encode("utf-8")
    else:
        body_bytes = json.dumps(body).encode("utf-8")
        headers.setdefault("content-type", "application/json")
    if body_bytes:
        headers.setdefault("content-length", str(len(body_bytes)))
    method = str(raw.get("method", "GET")).upper()
    path = str(raw.get("path", "/"))
    host = str(raw.get("host", "localhost"))
    headers.setdefault(":method", method)
    headers.setdefault(":path", path)
    headers.setdefault(":authority", host)
    http = _Ctx.HttpRequest(
        id=str(raw.get("id", "offline")),
        method=method,
        path=path,
        host=host,
        scheme=str(raw.get("scheme", "http")),
        protocol=str(raw.get("protocol", "HTTP/1.1")),
        headers=headers,
        size=len(body_bytes),
        raw_body=body_bytes,
    )
    attrs = _Ctx(
        source=_peer(raw.get("source"), "source"),
        destination=_peer(raw.get("destination"), "destination"),
        request=_Ctx.Request(http=http),
        context_extensions=_strings(raw.get("context"), "context"),
    )
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise RequestError("metadata must be an object of namespace -> object")
        for namespace, value in metadata.items():
            struct = struct_pb2.Struct()
            try:
                struct.update(value)
            except (ValueError, TypeError, AttributeError) as exc:
                raise RequestError(f"metadata.{namespace}: {exc}") from None
            attrs.metadata_context.filter_metadata[namespace].CopyFrom(struct)
    return external_auth_pb2.CheckRequest(attributes=attrs)


def load_request(path: str) -> external_auth_pb2.CheckRequest:
    """Read a request file; raises RequestError saying what is wrong and where."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except OSError as exc:
        raise RequestError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RequestError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise RequestError(f"{path}: invalid JSON: {exc}") from None
    try:
        return to_check_request(raw)
    except RequestError as exc:
        raise RequestError(f"{path}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise RequestError(f"{path}: {exc}") from None
