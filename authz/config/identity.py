"""The typed `identity:` section (read by authz/identity/config.py) and API key records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApiKey:
    """One stored key: its name, hash and attributes."""

    name: str
    digest: bytes
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenLocation:
    """Where a token is read from: a header (with an optional prefix), a query parameter or a
    cookie."""

    header: str = ""
    prefix: str = ""
    query: str = ""
    cookie: str = ""

    def describe(self) -> str:
        """Human-readable location, for errors and docs."""
        if self.header:
            return f"header {self.header}"
        return f"query parameter {self.query}" if self.query else f"cookie {self.cookie}"


BEARER = TokenLocation(header="authorization", prefix="Bearer ")


@dataclass(frozen=True)
class ClaimNames:
    """Which claims hold groups and scopes."""

    groups: str = "groups"
    scopes: tuple[str, ...] = ("scope", "scp")


@dataclass(frozen=True)
class JwtProviderConfig:
    """One trusted issuer."""

    issuer: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    jwks_file: str | None = None
    jwks_uri: str | None = None
    refresh_seconds: float = 300.0
    fetch_timeout_seconds: float = 0.5
    min_refresh_interval_seconds: float = 10.0
    leeway_seconds: float = 30.0
    locations: tuple[TokenLocation, ...] = (BEARER,)
    claims: ClaimNames = ClaimNames()
    max_token_bytes: int = 16384


@dataclass(frozen=True)
class ApiKeysConfig:
    """API keys: the header they arrive in and the file of hashed keys."""

    header: str
    file: str


@dataclass(frozen=True)
class MtlsConfig:
    """mTLS authenticates callers whose SPIFFE ID is in one of these trust domains (any, if
    empty)."""

    trust_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class JwtAuthnConfig:
    """Envoy's jwt_authn filter: the metadata key its payload is under ('' = any)."""

    payload_key: str = ""
    claims: ClaimNames = ClaimNames()


@dataclass(frozen=True)
class ProtectedResourceConfig:
    """This service as an OAuth 2.1 resource server (RFC 9728): the resource identifier
    tokens must be bound to (RFC 8707) and what its metadata document advertises."""

    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] = ()


@dataclass(frozen=True)
class IntrospectionConfig:
    """One RFC 7662 introspection endpoint for opaque tokens."""

    endpoint: str
    client_id: str
    client_secret: str = field(repr=False)
    cache_seconds: float = 60.0
    negative_cache_seconds: float = 5.0
    timeout_seconds: float = 0.2  # under serve's 250 ms check budget
    audiences: tuple[str, ...] = ()
    locations: tuple[TokenLocation, ...] = (BEARER,)
    claims: ClaimNames = ClaimNames()
    client_secret_file: str = ""


@dataclass(frozen=True)
class IdentityConfig:
    """The top-level `identity:` section."""

    jwt: tuple[JwtProviderConfig, ...] = ()
    api_keys: ApiKeysConfig | None = None
    mtls: MtlsConfig | None = None
    jwt_authn: JwtAuthnConfig | None = JwtAuthnConfig()
    protected_resource: ProtectedResourceConfig | None = None
    introspection: tuple[IntrospectionConfig, ...] = ()
