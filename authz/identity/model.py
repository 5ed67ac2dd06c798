"""The Identity value and the typed identity config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Reasons a credential was refused; also the error_description in WWW-Authenticate.
MISSING = "missing_credentials"
MALFORMED = "malformed"
TOO_LARGE = "too_large"
MULTIPLE = "multiple_tokens"
ALGORITHM = "algorithm_not_allowed"
UNKNOWN_ISSUER = "unknown_issuer"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
ISSUED_IN_FUTURE = "issued_in_future"
BAD_AUDIENCE = "bad_audience"
BAD_ISSUER = "bad_issuer"
MISSING_CLAIM = "missing_claim"
UNKNOWN_API_KEY = "unknown_api_key"
UNTRUSTED_DOMAIN = "untrusted_trust_domain"
INACTIVE = "inactive_token"  # RFC 7662: the authorization server says `active: false`
INTROSPECTION_FAILED = "introspection_failed"  # endpoint down, slow or answering nonsense
# Methods whose identity comes from a bearer token (audience binding applies to them).
TOKEN_METHODS = frozenset({"jwt", "jwt_authn", "introspection"})


@dataclass(frozen=True)
class Identity:
    """The caller as policies see it; `error` says why a presented credential was refused."""

    authenticated: bool = False
    method: str = "anonymous"
    subject: str = ""
    issuer: str = ""
    audiences: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict)
    spiffe_id: str = ""
    trust_domain: str = ""
    api_key: str = ""
    expires_at: int = 0
    error: str = ""

    def as_cel(self) -> dict[str, Any]:
        """The `identity` attribute."""
        return {
            "authenticated": self.authenticated,
            "method": self.method,
            "subject": self.subject,
            "issuer": self.issuer,
            "audiences": list(self.audiences),
            "groups": list(self.groups),
            "scopes": list(self.scopes),
            "claims": self.claims,
            "spiffe_id": self.spiffe_id,
            "trust_domain": self.trust_domain,
            "api_key": self.api_key,
            "expires_at": self.expires_at,
            "error": self.error,
        }


ANONYMOUS = Identity()


def strings(value: Any) -> tuple[str, ...]:
    """A claim or attribute as a tuple of strings: one string, or the strings of a list."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


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
    timeout_seconds: float = 0.5
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
