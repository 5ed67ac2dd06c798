"""Keys, JWKS documents and tokens for identity tests, made fresh by each test run; and
tokens signed with the shipped demo key, which the example policies and Envoy accept."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.paths import DEMO_KEYS

ISSUER = "https://idp.example.com"
AUDIENCE = "llm-gateway"
# The example pack's MCP route is an OAuth protected resource (identity.protected_resource):
# a token for it names it in `aud` and carries the scopes its rules ask for.
MCP_RESOURCE = "https://mcp.example.com/mcp"
MCP_SCOPES = "tools:read tools:write"


@dataclass(frozen=True)
class SigningKey:
    """A private key with its kid and algorithm, and its public JWK."""

    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK."""
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        """The public key as PEM (what an attacker would use as an HMAC secret)."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        """The private key as PKCS#8 PEM."""
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def rsa_key(kid: str = "rsa-1") -> SigningKey:
    """A fresh 2048-bit RSA key for RS256."""
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str = "ec-1") -> SigningKey:
    """A fresh P-256 key for ES256."""
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """A JWKS document with the public halves."""
    return {"keys": [k.public_jwk() for k in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for the test issuer and audience, with overrides (None removes)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "agent-7",
        "iat": now,
        "nbf": now - 5,
        "exp": now + 3600,  # a token minted at collection must outlive a slow suite
        "groups": ["ml", "ops"],
        "scope": "read write",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(key: SigningKey, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
    """A token signed by `key`."""
    return jwt.encode(
        claims(**overrides),
        key.private,
        algorithm=key.alg,
        headers={"kid": key.kid, **(headers or {})},
    )


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand (for alg none and other forgeries)."""
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    return f"{head}.{body}.{b64(signature)}"


def hmac_forgery(secret: bytes, alg: str = "HS256", kid: str = "rsa-1") -> str:
    """An HS256 token whose 'secret' is, say, the issuer's RSA public key."""
    head = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims()).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def demo_token(**overrides: Any) -> str:
    """A token signed with the shipped demo key (good for the LLM gateway and /mcp)."""
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": [AUDIENCE, MCP_RESOURCE],
        "scope": MCP_SCOPES,
        "sub": "agent-7",
        "iat": now,
        "exp": now + 300,
        **overrides,
    }
    key = (DEMO_KEYS / "demo-signing-key.pem").read_bytes()
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "demo-2026"})
