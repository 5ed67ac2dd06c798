"""Fuse every configured proof into one Identity.

Precedence: Envoy's jwt_authn payload (already verified by Envoy) > a bearer token (a JWT
verified here, or an opaque token introspected) > an API key > an mTLS SPIFFE ID. A
credential that is presented but fails is final: the caller is unauthenticated with that
reason, and no weaker proof is tried in its place. The peer's SPIFFE ID is filled in
whatever the method. With a protected resource configured, a bearer token presented to it
must name it in `aud` (RFC 8707), else it is refused as `bad_audience`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jwt

from authz.config.identity import ApiKey, IdentityConfig, TokenLocation
from authz.identity import model
from authz.identity.apikey import ApiKeyStore, key_identity
from authz.identity.introspection import Introspector
from authz.identity.jwks import WAIT, RemoteJwks, StaticJwks
from authz.identity.jwt_verify import JwtProvider, JwtVerifier, TokenRejected, claims_identity
from authz.identity.model import Identity
from authz.identity.mtls import spiffe_id
from authz.identity.protected_resource import ProtectedResource

if TYPE_CHECKING:  # identity reads the request; attributes never import identity back
    from authz.attributes import Attributes

JWT_AUTHN_NAMESPACE = "envoy.filters.http.jwt_authn"


def _cookie(header: str, name: str) -> list[str]:
    values = []
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            values.append(value.strip())
    return values


def _found(attrs: Attributes, location: TokenLocation) -> list[str | None]:
    """Every token at one location (more than one is an error the caller reports); None
    for a header present without the configured prefix (a bare token in `Authorization`):
    malformed, never ignored and never verified as if the prefix were there."""
    headers = attrs.request.headers
    if location.header:
        value = headers.get(location.header)
        if value is None:
            return []
        prefix = location.prefix
        if prefix and value[: len(prefix)].lower() != prefix.lower():
            return [None]
        # Envoy joins repeated headers with ","; a JWT never contains one.
        return [
            v.strip()[len(prefix) :] if i == 0 else v.strip()
            for i, v in enumerate(value.split(","))
        ]
    if location.query:
        return list(attrs.request.query.get(location.query, []))
    return _cookie(headers.get("cookie", ""), location.cookie)


class IdentityResolver:
    """Resolves the Identity of a request from the identity config."""

    def __init__(self, config: IdentityConfig, api_keys: tuple[ApiKey, ...] = ()) -> None:
        self.config = config
        self.api_keys = ApiKeyStore(list(api_keys)) if config.api_keys else None
        providers = []
        for provider in config.jwt:
            if provider.jwks_file:
                jwks: StaticJwks | RemoteJwks = StaticJwks(provider.jwks_file)
            else:
                jwks = RemoteJwks(
                    provider.jwks_uri or "",
                    provider.refresh_seconds,
                    provider.fetch_timeout_seconds,
                    provider.min_refresh_interval_seconds,
                )
            providers.append(JwtProvider(provider, jwks))
        self.jwt = JwtVerifier(providers)
        self.introspector = Introspector(config.introspection) if config.introspection else None
        introspected = [loc for i in config.introspection for loc in i.locations]
        self.introspected = frozenset(introspected)
        jwt_locations = [loc for p in config.jwt for loc in p.locations]
        self.locations = list(dict.fromkeys([*jwt_locations, *introspected]))
        self.protected_resource = (
            ProtectedResource(config.protected_resource) if config.protected_resource else None
        )

    def start(self) -> None:
        """Fetch remote key sets once, bounded, before serving."""
        for provider in self.jwt.providers.values():
            if isinstance(provider.jwks, RemoteJwks):
                provider.jwks.prime()

    def close(self) -> None:
        """Stop the key-fetch and introspection threads (the config is retired)."""
        for provider in self.jwt.providers.values():
            if isinstance(provider.jwks, RemoteJwks):
                provider.jwks.close()
        if self.introspector is not None:
            self.introspector.close()

    def resolve(self, attrs: Attributes, fetch: str = WAIT) -> Identity:
        """The caller's identity; never raises for anything a request can contain. With
        `fetch` RAISE, a token whose keys (or introspection answer) are not here yet raises
        KeysPending for the caller to await; SKIP then takes what is there."""
        spiffe, domain = spiffe_id(attrs.source.principal, attrs.source.certificate)
        identity = (
            self._jwt_authn(attrs)
            or self._jwt(attrs, fetch)
            or self._api_key(attrs)
            or self._mtls(spiffe, domain)
            or Identity(error=model.MISSING)
        )
        identity = self._bound(attrs, identity)
        if not (spiffe or domain):
            return identity
        return dataclasses.replace(identity, spiffe_id=spiffe, trust_domain=domain)

    def _bound(self, attrs: Attributes, identity: Identity) -> Identity:
        """RFC 8707 audience binding: a token presented to the protected resource must have
        been issued for it."""
        resource = self.protected_resource
        if (
            resource is None
            or not identity.authenticated
            or identity.method not in model.TOKEN_METHODS
            or not resource.covers(attrs.request.path)
            or resource.accepts(identity.audiences)
        ):
            return identity
        return Identity(
            method=identity.method,
            issuer=identity.issuer,
            error=model.BAD_AUDIENCE,
            claims={"detail": f"token audience does not include {resource.config.resource}"},
        )

    def _jwt_authn(self, attrs: Attributes) -> Identity | None:
        cfg = self.config.jwt_authn
        if cfg is None or attrs.metadata_context is None:
            return None
        if JWT_AUTHN_NAMESPACE not in attrs.metadata_context.filter_metadata:
            return None
        payloads: dict[str, Any] = attrs.metadata().get(JWT_AUTHN_NAMESPACE, {})
        keys = [cfg.payload_key] if cfg.payload_key else sorted(payloads)
        for key in keys:
            payload = payloads.get(key)
            if isinstance(payload, dict) and "iss" in payload:
                return claims_identity(_ints(payload), "jwt_authn", cfg.claims)
        return None

    def _jwt(self, attrs: Attributes, fetch: str) -> Identity | None:
        if not self.locations:
            return None
        tokens = [(loc, t) for loc in self.locations for t in _found(attrs, loc)]
        if not tokens:
            return None
        if len(tokens) > 1:
            where = ", ".join(sorted({loc.describe() for loc, _ in tokens}))
            return Identity(method="jwt", error=model.MULTIPLE, claims={"detail": where})
        location, token = tokens[0]
        if token is None:
            return Identity(method="jwt", error=model.MALFORMED)
        opaque = location in self.introspected and not self._trusted_jwt(token)
        if self.introspector is not None and opaque:
            return self.introspector.identity(token, fetch)
        try:
            return self.jwt.identity(token, fetch)
        except TokenRejected as exc:
            return Identity(method="jwt", issuer=exc.issuer, error=exc.reason)

    def _trusted_jwt(self, token: str) -> bool:
        """A JWT whose (unverified) issuer a jwt provider trusts; any other bearer token is
        opaque and goes to introspection."""
        if token.count(".") != 2 or not self.jwt.providers:
            return False
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False
        return unverified.get("iss") in self.jwt.providers

    def _api_key(self, attrs: Attributes) -> Identity | None:
        cfg = self.config.api_keys
        if cfg is None or self.api_keys is None:
            return None
        presented = attrs.request.headers.get(cfg.header)
        if presented is None:
            return None
        if "," in presented:
            return Identity(method="api_key", error=model.MULTIPLE)
        key = self.api_keys.lookup(presented.strip())
        if key is None:
            return Identity(method="api_key", error=model.UNKNOWN_API_KEY)
        return key_identity(key)

    def _mtls(self, spiffe: str, domain: str) -> Identity | None:
        cfg = self.config.mtls
        if cfg is None or not spiffe:
            return None
        if cfg.trust_domains and domain not in cfg.trust_domains:
            return Identity(method="mtls", error=model.UNTRUSTED_DOMAIN)
        return Identity(authenticated=True, method="mtls", subject=spiffe)


def _ints(payload: dict[str, Any]) -> dict[str, Any]:
    """Struct numbers arrive as doubles; whole-number time claims go back to ints."""
    out = dict(payload)
    for name in ("exp", "nbf", "iat"):
        value = out.get(name)
        if isinstance(value, float) and value.is_integer():
            out[name] = int(value)
    return out
