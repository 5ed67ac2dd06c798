"""A request described in JSON or YAML (for `authz check` and policy tests) -> CheckRequest.

Shape: {"method", "path" (may hold ?query), "host", "scheme", "protocol", "id", "headers":
{name: value}, "body": text or any JSON value (sent as JSON text), "source": {"address",
"port", "principal", "certificate" (URL-encoded PEM, as Envoy sends it)}, "destination":
{...}, "context": {key: value}, "metadata": {namespace: {...}}}. Every key is optional.

A file named *.yaml or *.yml is read as YAML, *.json as JSON; any other name, and `-`
(standard input), as JSON when the text starts with `{`, else as YAML.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml
from google.protobuf import struct_pb2

from authz._proto.envoy.config.core.v3 import address_pb2
from authz._proto.envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2
from authz.config.reader import did_you_mean
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
PEER_KEYS = {"address", "port", "principal", "certificate"}
_Ctx = attribute_context_pb2.AttributeContext


def _port(raw: Any, what: str) -> int:
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 65535:
        raise RequestError(f"{what}.port must be an integer from 0 to 65535, got {raw!r}")
    return raw


def _peer(raw: Any, what: str) -> _Ctx.Peer:
    if raw is None:
        return _Ctx.Peer()
    if not isinstance(raw, dict):
        raise RequestError(f"{what} must be an object with address, port, principal")
    unknown = set(raw) - PEER_KEYS
    if unknown:
        known = ", ".join(sorted(PEER_KEYS))
        raise RequestError(f"unknown {what} keys: {', '.join(sorted(map(str, unknown)))} ({known})")
    sock = address_pb2.SocketAddress(
        address=str(raw.get("address", "")), port_value=_port(raw.get("port", 0), what)
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
        hints = "".join(did_you_mean(str(k), KEYS) for k in sorted(map(str, unknown)))
        raise RequestError(f"unknown request keys: {', '.join(sorted(map(str, unknown)))}{hints}")
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


def _parse(text: str, name: str) -> Any:
    """JSON or YAML by the file name, else by the first character (see the docstring)."""
    as_yaml = name.endswith((".yaml", ".yml")) or (
        not name.endswith(".json") and not text.lstrip().startswith("{")
    )
    if not as_yaml:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise RequestError(
                f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise RequestError(f"{name}{where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise RequestError(f"{name}: invalid YAML: {exc}") from None


def load_request(path: str) -> external_auth_pb2.CheckRequest:
    """Read a request file (`-`: standard input); raises RequestError saying what is wrong
    and where, in one line."""
    name = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise RequestError(f"{name}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RequestError(f"{name}: not UTF-8 text: {exc.reason}") from None
    try:
        raw = _parse(text, name)
    except RecursionError:
        raise RequestError(f"{name}: nested too deeply") from None
    try:
        return to_check_request(raw)
    except RequestError as exc:
        raise RequestError(f"{name}: {exc}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise RequestError(f"{name}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
