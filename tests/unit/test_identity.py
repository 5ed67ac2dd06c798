"""Identity: JWT verification, hostile tokens, jwt_authn metadata, mTLS, API keys, 401s."""

from __future__ import annotations

import datetime
import hashlib
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authz.attributes import from_check_request
from authz.decision import UNAUTHENTICATED
from authz.identity.model import Identity
from authz.policy.compiler import CompiledConfig
from authz.request_file import to_check_request
from tests.support import tokens
from tests.support.tokens import ISSUER, SigningKey
from tests.unit.helpers import ENGINES, compile_policy, decide_request

API_KEY = "s3cr3t-key-for-ci"


# The issuer's keys and an attacker's key (same kid), made once per run.
KEYS = {
    "rsa": tokens.rsa_key("rsa-1"),
    "ec": tokens.ec_key("ec-1"),
    "evil": tokens.rsa_key("rsa-1"),
}


@pytest.fixture
def keys() -> dict[str, SigningKey]:
    """The issuer's keys and an attacker's key."""
    return KEYS


def policy_text(extra: str = "") -> str:
    """A policy file with every identity source configured."""
    return f"""
        identity:
          jwt:
            - issuer: {ISSUER}
              audiences: [llm-gateway]
              jwks_file: jwks.json
              algorithms: [RS256, ES256]
              leeway_seconds: 30
              from:
                - {{header: authorization, prefix: "Bearer "}}
                - {{query: access_token}}
                - {{cookie: session}}
          api_keys: {{header: x-api-key, file: api-keys.yaml}}
          mtls: {{trust_domains: [example.org]}}
        policies:
          - name: who
            require_identity: true
            rules:
              - name: any
                when: identity.authenticated
                effect: allow
                headers:
                  x-authz-subject: identity.subject
                  x-authz-method: identity.method
                metadata: {{groups: identity.groups, scopes: identity.scopes}}
        {extra}
    """


def setup(tmp_path: Path, keys: dict[str, SigningKey], engine: str = "cel-cpp") -> CompiledConfig:
    """Write the JWKS, the API key file and the policy; compile."""
    (tmp_path / "jwks.json").write_text(json.dumps(tokens.jwks(keys["rsa"], keys["ec"])))
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    (tmp_path / "api-keys.yaml").write_text(
        f"keys:\n  - name: ci-bot\n    sha256: {digest}\n"
        "    attributes: {groups: [ci], scopes: [deploy], team: platform}\n"
    )
    return compile_policy(tmp_path, policy_text(), engine)


@pytest.fixture
def config(tmp_path: Path, keys: dict[str, SigningKey]) -> CompiledConfig:
    """Compiled on the default engine."""
    return setup(tmp_path, keys)


def identity_of(config: CompiledConfig, request: dict[str, Any]) -> Identity:
    """The identity the resolver gives a described request."""
    attrs = from_check_request(to_check_request(request), config.limits)
    return config.identity.resolve(attrs)


def bearer(token: str, **extra: Any) -> dict[str, Any]:
    """A request carrying the token in the Authorization header."""
    return {"headers": {"authorization": f"Bearer {token}"}, "context": {"policy": "who"}, **extra}


@pytest.mark.parametrize("engine", ENGINES)
def test_valid_jwt_becomes_the_identity(
    tmp_path: Path, keys: dict[str, SigningKey], engine: str
) -> None:
    config = setup(tmp_path, keys, engine)
    token = tokens.mint(keys["rsa"])
    who = identity_of(config, bearer(token))
    assert (who.authenticated, who.method, who.subject, who.issuer) == (
        True,
        "jwt",
        "agent-7",
        ISSUER,
    )
    assert who.audiences == ("llm-gateway",) and who.groups == ("ml", "ops")
    assert who.scopes == ("read", "write") and who.error == ""
    assert who.expires_at == who.claims["exp"] > time.time()
    decision = decide_request(config, bearer(token))
    assert decision.allowed
    assert dict(decision.headers) == {"x-authz-subject": "agent-7", "x-authz-method": "jwt"}
    assert decision.metadata == {"groups": ["ml", "ops"], "scopes": ["read", "write"]}


def test_es256_query_and_cookie_locations(
    config: CompiledConfig, keys: dict[str, SigningKey]
) -> None:
    token = tokens.mint(keys["ec"])
    assert identity_of(config, bearer(token)).authenticated
    via_query = identity_of(config, {"path": f"/x?access_token={token}"})
    assert via_query.authenticated and via_query.method == "jwt"
    via_cookie = identity_of(config, {"headers": {"cookie": f"a=b; session={token}"}})
    assert via_cookie.authenticated


def test_expiry_within_leeway_is_accepted(
    config: CompiledConfig, keys: dict[str, SigningKey]
) -> None:
    token = tokens.mint(keys["rsa"], exp=int(time.time()) - 10)
    assert identity_of(config, bearer(token)).authenticated


def signed(key: SigningKey, **claims: Any) -> str:
    """A token signed by `key` whose claims may hold JSON null (tokens.mint drops None)."""
    return jwt.encode(
        {**tokens.claims(), **claims}, key.private, algorithm=key.alg, headers={"kid": key.kid}
    )


def hostile_cases(keys: dict[str, SigningKey]) -> list[tuple[str, dict[str, Any], str]]:
    """(name, request, exact identity.error) for every attack the identity issue lists."""
    rsa, now = keys["rsa"], int(time.time())
    valid = tokens.mint(rsa)
    head, _, sig = valid.split(".")
    tampered = f"{head}.{tokens.b64(json.dumps(tokens.claims(sub='admin')).encode())}.{sig}"
    return [
        (
            "alg none",
            bearer(tokens.unsigned({"alg": "none", "kid": "rsa-1"}, tokens.claims())),
            "algorithm_not_allowed",
        ),
        (
            "alg None",
            bearer(tokens.unsigned({"alg": "None"}, tokens.claims())),
            "algorithm_not_allowed",
        ),
        ("wrong signature", bearer(tokens.mint(keys["evil"])), "bad_signature"),
        ("tampered payload", bearer(tampered), "bad_signature"),
        ("expired", bearer(tokens.mint(rsa, exp=now - 3600)), "expired"),
        ("nbf in the future", bearer(tokens.mint(rsa, nbf=now + 3600)), "not_yet_valid"),
        ("iat in the future", bearer(tokens.mint(rsa, iat=now + 3600)), "issued_in_future"),
        ("wrong issuer", bearer(tokens.mint(rsa, iss="https://evil.example")), "unknown_issuer"),
        ("no issuer", bearer(tokens.mint(rsa, iss=None)), "unknown_issuer"),
        ("wrong audience", bearer(tokens.mint(rsa, aud="other")), "bad_audience"),
        ("no exp", bearer(tokens.mint(rsa, exp=None)), "missing_claim"),
        ("unknown kid", bearer(tokens.mint(rsa, headers={"kid": "rsa-9"})), "unknown_key"),
        (
            "kid with path characters",
            bearer(tokens.mint(rsa, headers={"kid": "../../../../etc/passwd"})),
            "unknown_key",
        ),
        (
            "kid not a string",
            bearer(tokens.unsigned({"alg": "RS256", "kid": 7}, tokens.claims(), b"x" * 256)),
            "malformed",
        ),
        (
            "HS256 signed with the RSA public key",
            bearer(tokens.hmac_forgery(rsa.public_pem())),
            "algorithm_not_allowed",
        ),
        (
            "ES256 header on an RSA kid",
            bearer(tokens.unsigned({"alg": "ES256", "kid": "rsa-1"}, tokens.claims(), b"x" * 64)),
            "unknown_key",
        ),
        # a bare token (no "Bearer ") is malformed, even a valid one: never verified as is
        (
            "bare token without Bearer",
            {"headers": {"authorization": valid}, "context": {"policy": "who"}},
            "malformed",
        ),
        # NumericDate claims must be JSON numbers: PyJWT alone reads them with int()
        ("exp as a string", bearer(tokens.mint(rsa, exp=str(now + 600))), "malformed"),
        ("exp as true", bearer(tokens.mint(rsa, exp=True)), "malformed"),
        ("exp as null", bearer(signed(rsa, exp=None)), "malformed"),
        ("nbf as a string", bearer(tokens.mint(rsa, nbf=str(now - 5))), "malformed"),
        ("nbf as false", bearer(tokens.mint(rsa, nbf=False)), "malformed"),
        ("iat as a string", bearer(tokens.mint(rsa, iat=str(now))), "malformed"),
        ("iat as true", bearer(tokens.mint(rsa, iat=True)), "malformed"),
        ("iat as null", bearer(signed(rsa, iat=None)), "malformed"),
        ("exp as Infinity", bearer(signed(rsa, exp=float("inf"))), "malformed"),
        ("claim with a lone surrogate", bearer(tokens.mint(rsa, sub="\ud800")), "malformed"),
        ("malformed base64", bearer("eyJhbGciOi!!.e30.@@@"), "malformed"),
        ("not a JWT", bearer("hello"), "malformed"),
        ("1 MB token", bearer("a" * (1 << 20)), "too_large"),
        (
            "header and query at once",
            bearer(valid, path=f"/x?access_token={valid}"),
            "multiple_tokens",
        ),
        (
            "two Authorization headers",
            {
                "headers": {"authorization": f"Bearer {valid},Bearer {valid}"},
                "context": {"policy": "who"},
            },
            "multiple_tokens",
        ),
        (
            "Basic instead of Bearer",
            {"headers": {"authorization": "Basic dXNlcjpwYXNz"}, "context": {"policy": "who"}},
            "malformed",
        ),
        (
            "unknown API key",
            {"headers": {"x-api-key": "guess"}, "context": {"policy": "who"}},
            "unknown_api_key",
        ),
        (
            "SPIFFE ID from an untrusted domain",
            {"source": {"principal": "spiffe://evil.org/agent"}, "context": {"policy": "who"}},
            "untrusted_trust_domain",
        ),
        ("nothing presented", {"context": {"policy": "who"}}, "missing_credentials"),
    ]


CASE_NAMES = [c[0] for c in hostile_cases(KEYS)]


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("engine", ENGINES)
def test_hostile_credentials_never_authenticate(
    tmp_path: Path, keys: dict[str, SigningKey], engine: str, name: str
) -> None:
    config = setup(tmp_path, keys, engine)
    request, reason = next((r, e) for n, r, e in hostile_cases(keys) if n == name)
    who = identity_of(config, request)
    assert (who.authenticated, who.error) == (False, reason)
    decision = decide_request(config, request)
    assert (decision.allowed, decision.status, decision.reason) == (False, 401, UNAUTHENTICATED)
    challenge = dict(decision.response_headers)["www-authenticate"]
    assert f'error_description="{reason}"' in challenge
    assert challenge.startswith('Bearer realm="authz"')


def test_jwt_authn_metadata_is_trusted_without_reverifying(config: CompiledConfig) -> None:
    payload = tokens.claims(sub="from-envoy", iss="https://any-issuer-envoy-verified")
    request = {
        "metadata": {"envoy.filters.http.jwt_authn": {"jwt_payload": payload}},
        "context": {"policy": "who"},
    }
    who = identity_of(config, request)
    assert (who.authenticated, who.method, who.subject) == (True, "jwt_authn", "from-envoy")
    assert who.groups == ("ml", "ops") and isinstance(who.expires_at, int)
    assert decide_request(config, request).allowed


def spiffe_certificate(uri: str) -> str:
    """A self-signed cert with a URI SAN, URL-encoded as Envoy sends it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    return urllib.parse.quote(cert.public_bytes(Encoding.PEM).decode(), safe="")


def test_mtls_spiffe_id_from_the_peer_certificate(
    config: CompiledConfig, keys: dict[str, SigningKey]
) -> None:
    cert = spiffe_certificate("spiffe://example.org/ns/agents/sa/bot")
    who = identity_of(config, {"source": {"certificate": cert}})
    assert (who.authenticated, who.method) == (True, "mtls")
    assert (who.spiffe_id, who.trust_domain) == (
        "spiffe://example.org/ns/agents/sa/bot",
        "example.org",
    )
    # a JWT wins as the method, and the peer's SPIFFE ID is still reported
    both = identity_of(config, bearer(tokens.mint(keys["rsa"]), source={"certificate": cert}))
    assert (both.method, both.spiffe_id) == ("jwt", "spiffe://example.org/ns/agents/sa/bot")
    garbage = identity_of(config, {"source": {"certificate": "not%20a%20cert"}})
    assert (garbage.authenticated, garbage.spiffe_id) == (False, "")


def test_api_key_identity_never_holds_the_key(config: CompiledConfig) -> None:
    request = {"headers": {"x-api-key": API_KEY}, "context": {"policy": "who"}}
    who = identity_of(config, request)
    assert (who.authenticated, who.method, who.subject, who.api_key) == (
        True,
        "api_key",
        "ci-bot",
        "ci-bot",
    )
    assert who.groups == ("ci",) and who.scopes == ("deploy",)
    assert who.claims["team"] == "platform"
    assert API_KEY not in json.dumps(who.as_cel())
    assert decide_request(config, request).allowed


def test_hmac_provider_refuses_an_rsa_public_key_as_secret(
    tmp_path: Path, keys: dict[str, SigningKey]
) -> None:
    secret = b"a-shared-secret-of-at-least-32-bytes!!"
    (tmp_path / "hs.json").write_text(
        json.dumps(
            {"keys": [{"kty": "oct", "kid": "hs-1", "k": tokens.b64(secret), "alg": "HS256"}]}
        )
    )
    config = compile_policy(
        tmp_path,
        f"""
        identity:
          jwt:
            - {{issuer: "{ISSUER}", jwks_file: hs.json, algorithms: [HS256]}}
        policies:
          - {{name: who, require_identity: true, rules: []}}
    """,
        "cel-cpp",
    )
    good = tokens.hmac_forgery(secret, kid="hs-1")
    assert identity_of(config, bearer(good)).authenticated
    forged = tokens.hmac_forgery(keys["rsa"].public_pem(), kid="hs-1")
    assert identity_of(config, bearer(forged)).error == "bad_signature"
    rs256 = tokens.mint(keys["rsa"], headers={"kid": "hs-1"})
    assert identity_of(config, bearer(rs256)).error == "algorithm_not_allowed"


@pytest.mark.parametrize(
    ("provider", "fragment"),
    [
        ("{issuer: x, jwks_file: jwks.json, algorithms: [none]}", "algorithm 'none' is not"),
        ("{issuer: x, jwks_file: jwks.json, algorithms: [HS256, RS256]}", "do not mix HMAC"),
        ("{issuer: x, jwks_file: missing.json}", "no such file"),
        ("{issuer: x, jwks_file: jwks.json, jwks_uri: 'https://a'}", "exactly one of"),
        ("{issuer: x, jwks_uri: 'ftp://a'}", "must be an http(s) URL"),
        ("{issuer: x, jwks_file: bad.json}", "jwks_file: not JSON"),
        ("{issuer: x, jwks_file: jwks.json, from: {header: a, query: b}}", "exactly one of"),
    ],
)
def test_identity_config_errors_have_positions(
    tmp_path: Path, keys: dict[str, SigningKey], provider: str, fragment: str
) -> None:
    from authz.errors import ConfigError
    from authz.policy.compiler import load
    from tests.unit.helpers import write_policy

    (tmp_path / "jwks.json").write_text(json.dumps(tokens.jwks(keys["rsa"])))
    (tmp_path / "bad.json").write_text("{oops")
    path = write_policy(
        tmp_path,
        f"""
        identity:
          jwt:
            - {provider}
        policies:
          - {{name: p, rules: []}}
    """,
    )
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    issue = next(i for i in caught.value.issues if fragment in i.message)
    assert issue.file == str(path) and issue.line == 3 and issue.col > 1


def test_api_key_file_errors_name_that_file(tmp_path: Path) -> None:
    from authz.errors import ConfigError
    from authz.policy.compiler import load
    from tests.unit.helpers import write_policy

    (tmp_path / "api-keys.yaml").write_text("keys:\n  - name: a\n    sha256: nothex\n")
    path = write_policy(
        tmp_path,
        """
        identity:
          api_keys: {header: x-api-key, file: api-keys.yaml}
        policies:
          - {name: p, rules: []}
    """,
    )
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    assert str(caught.value).startswith(f"{tmp_path / 'api-keys.yaml'}:3:13: sha256 must be")
