"""The policy file's shape, as typed values (positions kept on every string)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authz.config.identity import ApiKey, IdentityConfig
from authz.config.source import Located, SourceFile

if TYPE_CHECKING:  # a loaded model is a detectors value; the config layer never imports it
    from authz.detectors.classifier import InjectionModel

ALLOW, DENY = "allow", "deny"


@dataclass(frozen=True)
class DetectorsConfig:
    """The `detectors:` section: detectors that need something loaded (read by
    authz/detectors/config.py, which loads the model)."""

    injection_model: InjectionModel | None = None


@dataclass(frozen=True)
class Limits:
    """Bounds on what the service parses from a request."""

    max_body_bytes: int = 1 << 20
    max_json_depth: int = 64
    max_scan_chars: int = 65536
    # A text/event-stream holds back at most this many characters of answer text, so text
    # split across events is judged whole before any of it reaches the client.
    stream_hold_chars: int = 256
    # Envoy's ext_authz `with_request_body.max_request_bytes`. Envoy buffers at most this
    # much; a body that reaches it may have been cut even when Envoy says it was not (a
    # chunked body whose buffered part is exactly the limit comes with
    # `x-envoy-auth-partial-body: false`), so it is `body.truncated`. None: not configured.
    envoy_max_request_bytes: int | None = None


@dataclass(frozen=True)
class CacheConfig:
    """The decision cache (off unless the config has a `cache:` section)."""

    max_entries: int = 10_000
    ttl_seconds: float = 30.0


@dataclass(frozen=True)
class Rule:
    """`when` holds (CEL); the effect decides. Header and metadata values are CEL too."""

    name: Located
    when: Located
    effect: str
    status: int | None = None
    message: str | None = None
    headers: dict[str, Located] = field(default_factory=dict)
    remove_headers: tuple[str, ...] = ()
    response_headers: dict[str, Located] = field(default_factory=dict)
    metadata: dict[str, Located] = field(default_factory=dict)
    deny_as: str | None = None  # http, jsonrpc or tool_error (authz/jsonrpc.py); None: policy's
    jsonrpc_code: int | None = None  # the JSON-RPC error code of a deny sent as JSON-RPC
    insufficient_scope: tuple[str, ...] = ()  # a 403 naming the scopes wanted (RFC 6750 3.1)


@dataclass(frozen=True)
class ResponseRule:
    """A rule over what the upstream answered (authz/response_path/): `when` holds (CEL);
    the effect is allow, deny (the client gets `status` and the deny body instead) or redact
    (every text leaf of the body through redact())."""

    name: Located
    when: Located
    effect: str
    status: int | None = None
    message: str | None = None
    response_headers: dict[str, Located] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """An ordered list of rules, selected by route context or by its `match` expression."""

    name: Located
    rules: tuple[Rule, ...]
    match: Located | None = None
    default: str = DENY
    default_status: int = 403
    require_identity: bool = False
    dry_run: bool = False
    dry_run_header: str = ""
    response_rules: tuple[ResponseRule, ...] = ()  # first match, like rules
    on_unreadable: str = DENY  # a response the service cannot read: deny or allow
    deny_as: str = "http"  # how a rule's deny reaches the client (authz/jsonrpc.py)


@dataclass(frozen=True)
class Config:
    """A whole policy file."""

    source: SourceFile
    engine: str
    policies: tuple[Policy, ...]
    limits: Limits = Limits()
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    api_keys: tuple[ApiKey, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    cache: CacheConfig | None = None
    deny_body: tuple[str, ...] = ()  # record fields a deny body shows besides error, id
    detectors: DetectorsConfig = field(default_factory=DetectorsConfig)  # a loaded model
