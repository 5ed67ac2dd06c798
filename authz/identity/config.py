"""Read the policy file's `identity:` section into IdentityConfig, with positions."""

from __future__ import annotations

from typing import Any

from authz.identity.jwks import JwksError, StaticJwks
from authz.identity.jwt_verify import ALGORITHMS, SYMMETRIC
from authz.identity.model import (
    BEARER,
    ApiKeysConfig,
    ClaimNames,
    IdentityConfig,
    JwtAuthnConfig,
    JwtProviderConfig,
    MtlsConfig,
    TokenLocation,
)
from authz.policy.reader import Reader

SECTION_KEYS = {"jwt", "api_keys", "mtls", "jwt_authn"}
PROVIDER_KEYS = {
    "issuer",
    "audiences",
    "jwks_file",
    "jwks_uri",
    "refresh_seconds",
    "fetch_timeout_seconds",
    "min_refresh_interval_seconds",
    "algorithms",
    "leeway_seconds",
    "from",
    "groups_claim",
    "scopes_claim",
    "max_token_bytes",
}
LOCATION_KEYS = {"header", "prefix", "query", "cookie"}


def _claims(reader: Reader, data: dict[str, Any], where: Any) -> ClaimNames:
    groups = data.get("groups_claim", "groups")
    if not isinstance(groups, str) or not groups:
        reader.issue(reader.key(data, "groups_claim", where), "groups_claim must be a string")
        groups = "groups"
    scopes = reader.strings(data, "scopes_claim", where) if "scopes_claim" in data else None
    return ClaimNames(str(groups), scopes or ("scope", "scp"))


def _location(reader: Reader, raw: Any, where: Any) -> TokenLocation | None:
    data = reader.mapping(raw, where, "token location (from)", LOCATION_KEYS)
    kinds = [k for k in ("header", "query", "cookie") if k in data]
    if len(kinds) != 1:
        reader.issue(where, "a token location names exactly one of header, query, cookie")
        return None
    kind = kinds[0]
    name = reader.text(data.get(kind), reader.key(data, kind, where), kind)
    prefix = data.get("prefix", "")
    if not isinstance(prefix, str) or (prefix and kind != "header"):
        reader.issue(reader.key(data, "prefix", where), "prefix is a string, for headers only")
        prefix = ""
    if name is None:
        return None
    return TokenLocation(
        **{kind: name.lower() if kind == "header" else str(name)}, prefix=str(prefix)
    )


def _provider(reader: Reader, raw: Any) -> JwtProviderConfig | None:
    data = reader.mapping(raw, None, "jwt provider", PROVIDER_KEYS)
    where = next(iter(data), None)
    issuer = reader.text(data.get("issuer"), where, "issuer")
    audiences = reader.strings(data, "audiences", where)
    algorithms = reader.strings(data, "algorithms", where) or ("RS256", "ES256")
    for alg in algorithms:
        if alg not in ALGORITHMS:
            reader.issue(
                reader.key(data, "algorithms", where),
                f"algorithm {alg!r} is not allowed (choose from {', '.join(ALGORITHMS)})",
            )
    if any(a in SYMMETRIC for a in algorithms) and any(a not in SYMMETRIC for a in algorithms):
        reader.issue(
            reader.key(data, "algorithms", where),
            "do not mix HMAC (HS*) and asymmetric algorithms in one provider",
        )
    jwks_file = jwks_uri = None
    if ("jwks_file" in data) == ("jwks_uri" in data):
        reader.issue(issuer or where, "a jwt provider needs exactly one of jwks_file, jwks_uri")
    elif "jwks_file" in data:
        jwks_file = reader.file(
            data["jwks_file"], reader.key(data, "jwks_file", where), "jwks_file"
        )
        if jwks_file is not None:
            try:
                StaticJwks(jwks_file)
            except JwksError as exc:
                reader.issue(data["jwks_file"], f"jwks_file: {exc}")
    else:
        jwks_uri = reader.text(data["jwks_uri"], reader.key(data, "jwks_uri", where), "jwks_uri")
        if jwks_uri is not None and not jwks_uri.startswith(("https://", "http://")):
            reader.issue(jwks_uri, "jwks_uri must be an http(s) URL")
    raw_from = data.get("from")
    locations: list[TokenLocation] = []
    if raw_from is not None:
        for item in raw_from if isinstance(raw_from, list) else [raw_from]:
            location = _location(reader, item, reader.key(data, "from", where))
            if location is not None:
                locations.append(location)
    if issuer is None:
        return None
    return JwtProviderConfig(
        issuer=str(issuer),
        audiences=audiences,
        algorithms=algorithms,
        jwks_file=jwks_file,
        jwks_uri=str(jwks_uri) if jwks_uri else None,
        refresh_seconds=reader.number(data, "refresh_seconds", where, 300.0) or 300.0,
        fetch_timeout_seconds=reader.number(data, "fetch_timeout_seconds", where, 0.5),
        min_refresh_interval_seconds=reader.number(
            data, "min_refresh_interval_seconds", where, 10.0
        ),
        leeway_seconds=reader.number(data, "leeway_seconds", where, 30.0),
        locations=tuple(locations) or (BEARER,),
        claims=_claims(reader, data, where),
        max_token_bytes=int(reader.number(data, "max_token_bytes", where, 16384)),
    )


def read_identity(reader: Reader, raw: Any, where: Any) -> IdentityConfig:
    """The identity section; absent means anonymous callers plus Envoy's jwt_authn payloads."""
    if raw is None:
        return IdentityConfig()
    data = reader.mapping(raw, where, "identity", SECTION_KEYS)
    raw_jwt = data.get("jwt", [])
    if not isinstance(raw_jwt, list):
        reader.issue(reader.key(data, "jwt", where), "identity.jwt must be a list of providers")
        raw_jwt = []
    providers = [p for p in (_provider(reader, r) for r in raw_jwt) if p is not None]
    issuers = [p.issuer for p in providers]
    if len(set(issuers)) != len(issuers):
        reader.issue(reader.key(data, "jwt", where), "two jwt providers share an issuer")
    api_keys = None
    if "api_keys" in data:
        keys = reader.mapping(
            data["api_keys"], reader.key(data, "api_keys", where), "api_keys", {"header", "file"}
        )
        header = reader.text(keys.get("header"), reader.key(data, "api_keys", where), "header")
        path = reader.file(keys.get("file"), reader.key(data, "api_keys", where), "api_keys.file")
        if header is not None and path is not None:
            api_keys = ApiKeysConfig(str(header).lower(), path)
    mtls = None
    if "mtls" in data:
        section = reader.mapping(
            data["mtls"] or {}, reader.key(data, "mtls", where), "mtls", {"trust_domains"}
        )
        mtls = MtlsConfig(reader.strings(section, "trust_domains", where))
    jwt_authn: JwtAuthnConfig | None = JwtAuthnConfig()
    if "jwt_authn" in data:
        section = data["jwt_authn"]
        if section is False:
            jwt_authn = None
        else:
            values = reader.mapping(
                section or {},
                reader.key(data, "jwt_authn", where),
                "jwt_authn",
                {"payload_key", "groups_claim", "scopes_claim"},
            )
            key = values.get("payload_key", "")
            jwt_authn = JwtAuthnConfig(str(key), _claims(reader, values, where))
    return IdentityConfig(tuple(providers), api_keys, mtls, jwt_authn)
