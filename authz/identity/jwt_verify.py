"""Verify a JWT against the configured issuers with PyJWT (no hand-written crypto).

Order of checks: size, header (alg on the provider's allowlist, never `none`), issuer (picks
the provider), claim shapes (exp/nbf/iat are JSON numbers, no unpaired surrogate), key (by
kid; the key's type must fit the alg, so an HMAC secret or an RSA public key used as one can
never verify an asymmetric token), signature, exp/nbf/iat with leeway, audience.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import cachetools
import jwt

from authz.body import holds_lone_surrogate
from authz.config.identity import ClaimNames, JwtProviderConfig
from authz.identity import model
from authz.identity.jwks import WAIT, Jwks
from authz.identity.model import Identity, strings

# The key types each algorithm family may be verified with.
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "HS": "oct", "Ed": "OKP"}
ASYMMETRIC = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
SYMMETRIC = ("HS256", "HS384", "HS512")
ALGORITHMS = ASYMMETRIC + SYMMETRIC


class TokenRejected(Exception):
    """A token that does not authenticate; `reason` is one of the codes in identity.model."""

    def __init__(self, reason: str, detail: str, issuer: str = "") -> None:
        super().__init__(detail)
        self.reason, self.detail, self.issuer = reason, detail, issuer


class JwtProvider:
    """One trusted issuer with its keys."""

    def __init__(self, config: JwtProviderConfig, jwks: Jwks) -> None:
        self.config = config
        self.jwks = jwks

    def verify(
        self, token: str, header: dict[str, Any], fetch: str = WAIT
    ) -> tuple[dict[str, Any], jwt.PyJWK]:
        """Return the verified claims and the key that verified them, or raise
        TokenRejected."""
        cfg = self.config
        alg = header.get("alg")
        if alg not in cfg.algorithms:
            raise TokenRejected(model.ALGORITHM, f"algorithm {alg!r} not allowed", cfg.issuer)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected(model.MALFORMED, "kid is not a string", cfg.issuer)
        family = KEY_TYPES[alg[:2]]
        candidates = [k for k in self.jwks.keys(kid, fetch) if k.key_type == family]
        if not candidates:
            raise TokenRejected(model.UNKNOWN_KEY, "no key for this token", cfg.issuer)
        last: Exception | None = None
        for key in candidates:
            try:
                return self._decode(token, key, alg), key
            except jwt.InvalidSignatureError as exc:
                last = exc
        raise TokenRejected(model.BAD_SIGNATURE, f"signature does not verify ({last})", cfg.issuer)

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        cfg = self.config
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=list(cfg.audiences) or None,
                issuer=cfg.issuer,
                leeway=cfg.leeway_seconds,
                options={"require": ["exp", "iss"], "verify_aud": bool(cfg.audiences)},
            )
        except jwt.InvalidSignatureError:
            raise
        except jwt.ExpiredSignatureError:
            raise TokenRejected(model.EXPIRED, "token expired", cfg.issuer) from None
        except jwt.ImmatureSignatureError as exc:
            reason = model.ISSUED_IN_FUTURE if "iat" in str(exc) else model.NOT_YET_VALID
            raise TokenRejected(reason, str(exc), cfg.issuer) from None
        except jwt.InvalidAudienceError as exc:
            raise TokenRejected(model.BAD_AUDIENCE, str(exc), cfg.issuer) from None
        except jwt.InvalidIssuerError as exc:
            raise TokenRejected(model.BAD_ISSUER, str(exc), cfg.issuer) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(model.MISSING_CLAIM, str(exc), cfg.issuer) from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(model.MALFORMED, str(exc), cfg.issuer) from None
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > time.time() + cfg.leeway_seconds:
            raise TokenRejected(model.ISSUED_IN_FUTURE, "iat is in the future", cfg.issuer)
        return claims


def claims_identity(claims: dict[str, Any], method: str, names: ClaimNames) -> Identity:
    """An authenticated Identity from verified claims."""
    scopes: tuple[str, ...] = ()
    for name in names.scopes:
        value = claims.get(name)
        if isinstance(value, str):
            scopes = tuple(value.split())
            break
        if isinstance(value, list):
            scopes = strings(value)
            break
    exp = claims.get("exp")
    return Identity(
        authenticated=True,
        method=method,
        subject=str(claims.get("sub", "")),
        issuer=str(claims.get("iss", "")),
        audiences=strings(claims.get("aud")),
        groups=strings(claims.get(names.groups)),
        scopes=scopes,
        claims=claims,
        expires_at=int(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else 0,
    )


@dataclass(frozen=True)
class _Verified:
    claims: dict[str, Any]
    provider: JwtProvider
    kid: str | None
    key: jwt.PyJWK
    identity: Identity


class JwtVerifier:
    """All configured issuers; a token is routed to its issuer's provider.

    A verified token is remembered for VERIFIED_TTL seconds (bounded LRU), so a client that
    sends the same token on every request pays for the signature once; exp and nbf are
    checked again on every use. Refused tokens are never remembered.
    """

    VERIFIED_TTL = 60.0
    VERIFIED_MAX = 10_000

    def __init__(self, providers: list[JwtProvider]) -> None:
        self.providers = {p.config.issuer: p for p in providers}
        self.max_bytes = max((p.config.max_token_bytes for p in providers), default=16384)
        self._verified: cachetools.TTLCache[str, _Verified] = cachetools.TTLCache(
            maxsize=self.VERIFIED_MAX, ttl=self.VERIFIED_TTL
        )
        self._lock = threading.Lock()

    def identity(self, token: str, fetch: str = WAIT) -> Identity:
        """The identity a token proves, or raise TokenRejected (or KeysPending, when `fetch`
        is RAISE and the token needs keys not fetched yet)."""
        if len(token) > self.max_bytes:
            raise TokenRejected(model.TOO_LARGE, f"token longer than {self.max_bytes} bytes")
        with self._lock:
            remembered = self._verified.get(token)
        # Reused only while the key that verified it is still published.
        if remembered is not None and any(
            k is remembered.key for k in remembered.provider.jwks.keys(remembered.kid, fetch)
        ):
            _still_valid(remembered.claims, remembered.provider.config)
            return remembered.identity
        claims, provider, kid, key = self._verify(token, fetch)
        identity = claims_identity(claims, "jwt", provider.config.claims)
        with self._lock:
            self._verified[token] = _Verified(claims, provider, kid, key, identity)
        return identity

    def _verify(
        self, token: str, fetch: str
    ) -> tuple[dict[str, Any], JwtProvider, str | None, jwt.PyJWK]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(model.MALFORMED, f"not a JWT: {exc}") from None
        issuer = unverified.get("iss")
        provider = self.providers.get(issuer) if isinstance(issuer, str) else None
        if provider is None:
            raise TokenRejected(model.UNKNOWN_ISSUER, f"issuer {issuer!r} is not trusted")
        problem = _shape_problem(unverified)
        if problem:
            raise TokenRejected(model.MALFORMED, problem, provider.config.issuer)
        claims, key = provider.verify(token, header, fetch)
        return claims, provider, header.get("kid"), key


TIME_CLAIMS = ("exp", "nbf", "iat")


def _shape_problem(claims: dict[str, Any]) -> str:
    """Why claims cannot be judged as they stand, or "". PyJWT reads a time claim with
    int(), so "1700000000" or true would pass as a time; RFC 7519 makes them NumericDate,
    a JSON number. A lone UTF-16 surrogate is no text any consumer agrees on."""
    for name in TIME_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} is not a number"
        if not math.isfinite(value):
            return f"{name} is not a finite number"
    if holds_lone_surrogate(claims):
        return "a claim holds an unpaired UTF-16 surrogate"
    return ""


def _still_valid(claims: dict[str, Any], config: JwtProviderConfig) -> None:
    """exp and nbf against the clock now, with the provider's leeway."""
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, int | float) and exp < now - config.leeway_seconds:
        raise TokenRejected(model.EXPIRED, "token expired", config.issuer)
    if isinstance(nbf, int | float) and nbf > now + config.leeway_seconds:
        raise TokenRejected(model.NOT_YET_VALID, "token not yet valid", config.issuer)
