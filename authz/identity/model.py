"""The Identity value: who is calling, however they proved it, and why a credential was
refused. (The identity config is authz/config/identity.py.)"""

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
