"""Read the policy file's `identity:` section into IdentityConfig, with positions."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from authz.config.identity import (
    BEARER,
    ApiKeysConfig,
    ClaimNames,
    IdentityConfig,
    IntrospectionConfig,
    JwtAuthnConfig,
    JwtProviderConfig,
    MtlsConfig,
    ProtectedResourceConfig,
    TokenLocation,
)
from authz.config.reader import Reader
from authz.identity.jwks import JwksError, StaticJwks
from authz.identity.jwt_verify import ALGORITHMS, SYMMETRIC

SECTION_KEYS = {"jwt", "api_keys", "mtls", "jwt_authn", "protected_resource", "introspection"}
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
RESOURCE_KEYS = {"resource", "authorization_servers", "scopes_supported"}
INTROSPECTION_KEYS = {
    "endpoint",
    "client_id",
    "client_secret_file",
    "cache_seconds",
    "negative_cache_seconds",
    "timeout_seconds",
    "audiences",
    "from",
    "groups_claim",
    "scopes_claim",
}
# RFC 6749 3.3 scope-token: printable ASCII except space, '"' and '\\' (it goes into a
# quoted challenge parameter).
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


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


def scopes(reader: Reader, data: dict[str, Any], name: str, where: Any) -> tuple[str, ...]:
    """A list of distinct RFC 6749 scope tokens under `name`."""
    at = reader.key(data, name, where)
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        reader.issue(at, f"{name} must be a list of scopes")
        return ()
    for scope in value:
        if not SCOPE_TOKEN.fullmatch(scope):
            reader.issue(scope, f"{name}: '{scope}' is not a scope (no spaces, quotes or \\)")
    reader.unique(list(value), f"scope in {name}")
    return tuple(str(v) for v in value)


def _https_url(reader: Reader, value: Any, where: Any, what: str, loopback_http: bool) -> str:
    """An absolute https URL with a host and no fragment or query ("" after an issue);
    http only to a loopback address when `loopback_http`."""
    text = reader.text(value, where, what)
    if text is None:
        return ""
    parts = urlsplit(str(text))
    local = loopback_http and parts.scheme == "http" and _loopback(parts.hostname or "")
    if (parts.scheme != "https" and not local) or not parts.hostname:
        allowed = " (http only to a loopback address)" if loopback_http else ""
        reader.issue(text, f"{what} must be an https URL{allowed}")
        return ""
    if parts.fragment or parts.query or "#" in text:
        reader.issue(text, f"{what} must have no query or fragment")
        return ""
    return str(text)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _protected_resource(reader: Reader, raw: Any, where: Any) -> ProtectedResourceConfig | None:
    data = reader.mapping(raw, where, "protected_resource", RESOURCE_KEYS)
    resource = _https_url(reader, data.get("resource"), where, "resource", False)
    at = reader.key(data, "authorization_servers", where)
    servers = data.get("authorization_servers")
    if not isinstance(servers, list) or not servers:
        reader.issue(at, "authorization_servers must be a non-empty list of https URLs")
        servers = []
    urls = [_https_url(reader, s, at, "authorization_servers", False) for s in servers]
    reader.unique([s for s in servers if isinstance(s, str)], "authorization server")
    supported = ()
    if "scopes_supported" in data:
        supported = scopes(reader, data, "scopes_supported", where)
    if not resource or not all(urls) or not urls:
        return None
    return ProtectedResourceConfig(resource, tuple(urls), supported)


def _introspection(reader: Reader, raw: Any) -> IntrospectionConfig | None:
    data = reader.mapping(raw, None, "introspection endpoint", INTROSPECTION_KEYS)
    where = next(iter(data), None)
    endpoint = _https_url(reader, data.get("endpoint"), where, "endpoint", True)
    client_id = reader.text(data.get("client_id"), where, "client_id")
    secret_at = reader.key(data, "client_secret_file", where)
    path = reader.file(data.get("client_secret_file"), secret_at, "client_secret_file")
    secret = ""
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                secret = fh.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reader.issue(data["client_secret_file"], f"client_secret_file: cannot read: {exc}")
        else:
            if not secret:
                reader.issue(data["client_secret_file"], "client_secret_file is empty")
    timeout = reader.number(data, "timeout_seconds", where, 0.2)
    if timeout <= 0:
        reader.issue(reader.key(data, "timeout_seconds", where), "timeout_seconds must be > 0")
    locations: list[TokenLocation] = []
    raw_from = data.get("from")
    for item in (raw_from if isinstance(raw_from, list) else [raw_from]) if raw_from else []:
        location = _location(reader, item, reader.key(data, "from", where))
        if location is not None:
            locations.append(location)
    config = IntrospectionConfig(
        endpoint=endpoint,
        client_id=str(client_id or ""),
        client_secret=secret,
        cache_seconds=reader.number(data, "cache_seconds", where, 60.0),
        negative_cache_seconds=reader.number(data, "negative_cache_seconds", where, 5.0),
        timeout_seconds=timeout,
        audiences=reader.strings(data, "audiences", where),
        locations=tuple(locations) or (BEARER,),
        claims=_claims(reader, data, where),
        client_secret_file=path or "",
    )
    return config if endpoint and client_id and secret and timeout > 0 else None


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
    resource = None
    if "protected_resource" in data:
        at = reader.key(data, "protected_resource", where)
        resource = _protected_resource(reader, data["protected_resource"], at)
    raw_introspection = data.get("introspection", [])
    listed = isinstance(raw_introspection, list) and bool(raw_introspection)
    if "introspection" in data and not listed:
        at = reader.key(data, "introspection", where)
        reader.issue(at, "identity.introspection must be a non-empty list of endpoints")
        raw_introspection = []
    endpoints = [e for e in (_introspection(reader, r) for r in raw_introspection) if e]
    reader.unique(
        [r["endpoint"] for r in raw_introspection if isinstance(r, dict) and "endpoint" in r],
        "introspection endpoint",
    )
    return IdentityConfig(tuple(providers), api_keys, mtls, jwt_authn, resource, tuple(endpoints))
