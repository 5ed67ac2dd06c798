"""CheckRequest -> typed attributes, and from those the variables CEL expressions read.

Pure: no I/O. Only the attributes that some loaded expression reads are turned into CEL
values for a request (see policy/references.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from google.protobuf import json_format

from authz._proto.envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2
from authz.body import LONE_SURROGATE, BodyView
from authz.config.model import Limits
from authz.errors import RequestError
from authz.identity.model import ANONYMOUS, Identity
from authz.llm import llm_view
from authz.mcp import mcp_view
from authz.schema import BODY_ROOTS

MAX_QUERY_FIELDS = 1000
PARTIAL_BODY_HEADER = "x-envoy-auth-partial-body"
# A read is (root, field): what an expression reads; field None means the whole root.
Read = tuple[str, str | None]


@dataclass(frozen=True)
class Peer:
    """One end of the connection."""

    address: str = ""
    port: int = 0
    principal: str = ""
    certificate: str = ""  # URL-encoded PEM (include_peer_certificate); read by identity only

    def as_cel(self) -> dict[str, Any]:
        """The `source` / `destination` attribute."""
        return {"address": self.address, "port": self.port, "principal": self.principal}


@dataclass(frozen=True)
class HttpRequest:
    """The HTTP request line and headers."""

    id: str
    method: str
    path: str
    query: dict[str, list[str]]
    host: str
    scheme: str
    protocol: str
    headers: dict[str, str]
    size: int

    def as_cel(self) -> dict[str, Any]:
        """The `request` attribute."""
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "path_segments": [s for s in self.path.split("/") if s],
            "host": self.host,
            "scheme": self.scheme,
            "protocol": self.protocol,
            "headers": self.headers,
            "size": self.size,
        }


@dataclass(frozen=True)
class Attributes:
    """Everything a policy can look at for one request."""

    request: HttpRequest
    source: Peer
    destination: Peer
    context: dict[str, str]
    body: BodyView
    metadata_context: Any = None
    identity: Identity = ANONYMOUS

    def with_identity(self, identity: Identity) -> Attributes:
        """The same request with the caller's identity resolved (a shallow copy: the body
        view and what it has parsed are shared)."""
        resolved = copy.copy(self)
        object.__setattr__(resolved, "identity", identity)
        return resolved

    def metadata(self) -> dict[str, Any]:
        """Envoy's filter metadata, namespace -> plain map."""
        if self.metadata_context is None:
            return {}
        return {
            ns: json_format.MessageToDict(struct)
            for ns, struct in self.metadata_context.filter_metadata.items()
        }

    def variables(self, reads: frozenset[Read]) -> dict[str, Any]:
        """The CEL variables for the roots that loaded expressions read."""
        roots = {root for root, _ in reads} | {"context"}
        out: dict[str, Any] = {"context": self.context}
        if "request" in roots:
            out["request"] = self.request.as_cel()
        if "source" in roots:
            out["source"] = self.source.as_cel()
        if "destination" in roots:
            out["destination"] = self.destination.as_cel()
        if "metadata" in roots:
            out["metadata"] = self.metadata()
        if "identity" in roots:
            out["identity"] = self.identity.as_cel()
        if roots & BODY_ROOTS:
            _no_nul(self.body.raw)
            _no_lone_surrogate(self.body)
        if "llm" in roots:
            parsed = self.body.parsed
            view = llm_view(self.request.path, self.request.headers, parsed.value, parsed.error)
            # Counting tokens costs ~0.5 ms for 4 KB: only for a policy that reads them.
            tokens = bool(reads & {("llm", "estimated_input_tokens"), ("llm", None)})
            out["llm"] = view.as_cel(tokens)
        if "mcp" in roots:
            out["mcp"] = mcp_view(self.request.method, self.request.headers, self.body.parsed.value)
        if "body" in roots:
            whole = ("body", None) in reads
            fields = None if whole else {f for r, f in reads if r == "body" and f}
            out["body"] = self.body.as_cel(fields)
        return out


def _no_nul(raw: bytes) -> None:
    """A body policies read must not hold NUL (raw or as a JSON escape): the C++ engine cuts
    strings there, so `"read_file\\u0000x"` would read as "read_file". Refused, not cut."""
    if b"\0" in raw or b"\\u0000" in raw:  # JSON spells the escape in lower case only
        raise RequestError("body holds a NUL character")


def _no_lone_surrogate(body: BodyView) -> None:
    """A JSON escape of an unpaired UTF-16 surrogate (`"\\ud800"`) decodes to no character:
    no upstream can read it as text and the C++ engine cannot hold it. Refused, on both
    engines alike, whichever view a policy reads."""
    if body.maybe_lone_surrogate and body.parsed.error == LONE_SURROGATE:
        raise RequestError(LONE_SURROGATE)


def _peer(peer: attribute_context_pb2.AttributeContext.Peer) -> Peer:
    address = peer.address
    kind = address.WhichOneof("address")
    if kind == "socket_address":
        sock = address.socket_address
        return Peer(sock.address, int(sock.port_value), peer.principal, peer.certificate)
    if kind == "pipe":
        return Peer(address.pipe.path, 0, peer.principal, peer.certificate)
    return Peer("", 0, peer.principal, peer.certificate)


_CONTROL = ("\r", "\n", "\0")


def _headers(http: attribute_context_pb2.AttributeContext.HttpRequest) -> dict[str, str]:
    if http.header_map.headers:
        # Raw header map (encode_raw_headers): repeated names are joined as Envoy does.
        joined: dict[str, str] = {}
        for header in http.header_map.headers:
            value = header.raw_value.decode("utf-8", errors="replace") or header.value
            key = header.key.lower()
            joined[key] = f"{joined[key]},{value}" if key in joined else value
    else:
        joined = {key.lower(): value for key, value in http.headers.items()}
    # HTTP forbids these; Envoy never sends them. A CheckRequest that has them is malformed,
    # whoever sent it (and the C++ engine would cut a value at NUL). One scan of everything
    # first; the name is looked for only when there is something to report.
    everything = "".join(joined) + "".join(joined.values())
    if "\r" in everything or "\n" in everything or "\0" in everything:
        for key, value in joined.items():
            if any(c in key or c in value for c in _CONTROL):
                raise RequestError(f"header {key[:40]!r} holds CR, LF or NUL")
    return joined


def _split_path(raw: str, query_field: str) -> tuple[str, dict[str, list[str]]]:
    path, _, query = raw.partition("?")
    path = path.partition("#")[0]
    query = query.partition("#")[0] or query_field
    try:
        parsed = parse_qs(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise RequestError(f"query string has more than {MAX_QUERY_FIELDS} fields") from None
    if "\0" in query or "%00" in query:
        # The C++ engine cuts strings at NUL: `a\0b` would read as `a` there.
        raise RequestError("query string holds a NUL character")
    return path, parsed


def _content_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def from_check_request(check: external_auth_pb2.CheckRequest, limits: Limits) -> Attributes:
    """Build attributes from Envoy's CheckRequest; raises RequestError on a malformed one."""
    attrs = check.attributes
    http = attrs.request.http
    headers = _headers(http)
    path, query = _split_path(http.path, http.query)
    raw_body = http.raw_body or http.body.encode("utf-8")
    length = _content_length(headers)
    # Partial when Envoy says so, when content-length promised more, or when the body
    # reaches Envoy's buffer limit (Envoy says "false" for a chunked body cut exactly there).
    envoy_limit = limits.envoy_max_request_bytes
    truncated = (
        headers.get(PARTIAL_BODY_HEADER, "").lower() == "true"
        or (length is not None and length > len(raw_body))
        or (envoy_limit is not None and len(raw_body) >= envoy_limit)
    )
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    request = HttpRequest(
        id=http.id,
        method=http.method,
        path=path,
        query=query,
        host=http.host,
        scheme=http.scheme,
        protocol=http.protocol,
        headers=headers,
        size=int(http.size),
    )
    return Attributes(
        request=request,
        source=_peer(attrs.source),
        destination=_peer(attrs.destination),
        context=dict(attrs.context_extensions),
        body=BodyView(raw_body, content_type, truncated, limits),
        metadata_context=attrs.metadata_context if attrs.HasField("metadata_context") else None,
    )
