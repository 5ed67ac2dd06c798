"""`authz token`: mint a signed development JWT, for trying policies and the demo.

The algorithm follows the key unless given: RSA keys sign RS256, EC keys ES256/ES384/ES512
by curve, Ed25519/Ed448 keys EdDSA; an HS* algorithm takes the file's bytes as the shared
secret. Claims: `iss`, `aud`, `sub`, `iat`, `exp` (`iat` + ttl), then every `--claim`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from authz.errors import TokenError

_EC = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def parse_claims(items: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs; VALUE is JSON when it parses as JSON, else the string itself."""
    claims: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise TokenError(f"--claim {item!r}: expected NAME=VALUE")
        try:
            claims[name] = json.loads(text)
        except ValueError:
            claims[name] = text
    return claims


def _algorithm_for(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _EC:
            raise TokenError(f"EC curve {key.curve.name} has no JWS algorithm")
        return _EC[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return "EdDSA"
    raise TokenError(f"cannot sign with a {type(key).__name__}")


def mint(
    key_path: str, kid: str, claims: dict[str, Any], ttl: int, algorithm: str | None = None
) -> str:
    """The compact, signed token."""
    try:
        with open(key_path, "rb") as fh:
            material = fh.read()
    except OSError as exc:
        raise TokenError(f"{key_path}: cannot read: {exc.strerror}") from None
    if algorithm is not None and algorithm.startswith("HS"):
        key: Any = material.strip()
    else:
        try:
            key = serialization.load_pem_private_key(material, password=None)
        except (ValueError, TypeError) as exc:
            raise TokenError(f"{key_path}: not an unencrypted PEM private key ({exc})") from None
        algorithm = algorithm or _algorithm_for(key)
    now = int(time.time())
    body = {"iat": now, "exp": now + ttl, **claims}
    try:
        return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})
    except (NotImplementedError, ValueError, TypeError, jwt.PyJWTError) as exc:
        raise TokenError(f"cannot sign with {algorithm}: {exc}") from None
