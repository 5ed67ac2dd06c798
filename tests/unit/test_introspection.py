"""RFC 7662 introspection of opaque tokens: answers, cache, failures, the non-blocking wait,
and the config that turns it on (every mistake refused at load with its position)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authz.config.identity import IntrospectionConfig
from authz.errors import ConfigError
from authz.identity import model
from authz.identity.introspection import Introspector, basic_auth
from authz.identity.jwks import RAISE, KeysPending
from authz.policy.compiler import CompiledConfig, load
from authz.request_file import to_check_request
from authz.service import Checker
from tests.support.introspection_server import CLIENT_ID, CLIENT_SECRET, IntrospectionServer
from tests.support.tokens import mint, rsa_key
from tests.unit.helpers import decide_request, write_policy

POLICY = """
identity:
  introspection:
    - endpoint: {url}
      client_id: authz
      client_secret_file: secret
      cache_seconds: {cache}
      negative_cache_seconds: 5
      timeout_seconds: 0.3
policies:
  - name: api
    require_identity: true
    rules:
      - name: reader
        when: identity.method == "introspection" && "read" in identity.scopes
        effect: allow
        headers:
          x-sub: identity.subject
          x-aud: 'identity.audiences.size() > 0 ? identity.audiences[0] : ""'
          x-exp: string(identity.expires_at)
          x-client: 'has(identity.claims.client_id) ? string(identity.claims.client_id) : ""'
"""


@pytest.fixture
def endpoint() -> Iterator[IntrospectionServer]:
    server = IntrospectionServer()
    yield server
    server.stop()


def _config(tmp_path: Path, url: str, cache: int = 60) -> CompiledConfig:
    (tmp_path / "secret").write_text(CLIENT_SECRET + "\n")
    return load(str(write_policy(tmp_path, POLICY.format(url=url, cache=cache))), "cel-python")


def _ask(config: CompiledConfig, token: str) -> Any:
    request = {
        "method": "GET",
        "path": "/api/x",
        "headers": {"authorization": f"Bearer {token}"},
        "context": {"policy": "api"},
    }
    return decide_request(config, request)


def test_an_active_token_authenticates_with_its_claims(
    tmp_path: Path, endpoint: IntrospectionServer
) -> None:
    exp = int(time.time()) + 600
    endpoint.tokens["tok-1"] = {
        "active": True,
        "sub": "agent-9",
        "scope": "read write",
        "aud": ["https://api.example.com"],
        "exp": exp,
        "client_id": "cli",
    }
    decision = _ask(_config(tmp_path, endpoint.url), "tok-1")
    assert decision.allowed, decision.message
    assert dict(decision.headers) == {
        "x-sub": "agent-9",
        "x-aud": "https://api.example.com",
        "x-exp": str(exp),
        "x-client": "cli",
    }
    # HTTP Basic client authentication, id and secret form-encoded first (RFC 6749 2.3.1)
    assert endpoint.auth == [basic_auth(CLIENT_ID, CLIENT_SECRET)]
    assert endpoint.hits == ["tok-1"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"active": False}, model.INACTIVE),
        (None, model.INACTIVE),  # unknown to the server: it says inactive
        ({"active": True, "sub": "x", "scope": "read", "exp": 1000}, model.EXPIRED),
        ({"active": True, "scope": "read", "nbf": 4_000_000_000}, model.NOT_YET_VALID),
        ({"active": "true", "scope": "read"}, model.INTROSPECTION_FAILED),
        ({"active": True, "scope": "read", "exp": "soon"}, model.INTROSPECTION_FAILED),
    ],
)
def test_a_token_that_is_not_active_now_is_401_invalid_token(
    tmp_path: Path, endpoint: IntrospectionServer, answer: Any, reason: str
) -> None:
    if answer is not None:
        endpoint.tokens["tok"] = answer
    decision = _ask(_config(tmp_path, endpoint.url), "tok")
    assert (decision.allowed, decision.status) == (False, 401)
    challenge = dict(decision.response_headers)["www-authenticate"]
    assert f'error="invalid_token", error_description="{reason}"' in challenge


@pytest.mark.parametrize("mode", ["fail", "hang", "stopped"])
def test_an_endpoint_down_or_slow_is_401_never_an_allow(
    tmp_path: Path, endpoint: IntrospectionServer, mode: str
) -> None:
    endpoint.tokens["tok"] = {"active": True, "scope": "read"}
    config = _config(tmp_path, endpoint.url)
    if mode == "stopped":
        endpoint.stop()
    else:
        endpoint.mode = mode
    started = time.monotonic()
    decision = _ask(config, "tok")
    assert (decision.allowed, decision.status) == (False, 401)
    assert "introspection_failed" in dict(decision.response_headers)["www-authenticate"]
    assert time.monotonic() - started < 2.0  # bounded by timeout_seconds (0.3), not by 30 s
    endpoint.release()


def test_answers_are_cached_and_a_jwt_from_a_trusted_issuer_is_not_introspected(
    tmp_path: Path, endpoint: IntrospectionServer
) -> None:
    endpoint.tokens["tok"] = {"active": True, "scope": "read"}
    config = _config(tmp_path, endpoint.url)
    assert _ask(config, "tok").allowed and _ask(config, "tok").allowed
    assert not _ask(config, "nope").allowed and not _ask(config, "nope").allowed
    assert endpoint.hits == ["tok", "nope"]  # one call each: positive and negative cached
    # a JWT no `jwt` provider trusts is opaque to us: the authorization server judges it
    foreign = mint(rsa_key())
    assert not _ask(config, foreign).allowed and endpoint.hits[-1] == foreign
    # what could never be a bearer token is not sent anywhere
    assert not _ask(config, "a b").allowed and endpoint.hits[-1] == foreign


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _introspector(answers: dict[str, Any], clock: _Clock, cache: float = 60.0) -> Introspector:
    config = IntrospectionConfig(
        "https://idp.example.com/introspect",
        "authz",
        "secret",
        cache_seconds=cache,
        negative_cache_seconds=5.0,
        timeout_seconds=1.0,
    )
    sent: list[str] = []

    def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        token = body.decode().split("&")[0].split("=", 1)[1]
        sent.append(token)
        import json

        return 200, json.dumps(answers.get(token, {"active": False})).encode()

    introspector = Introspector((config,), post=post, clock=clock)
    introspector.sent = sent  # type: ignore[attr-defined]
    return introspector


def test_the_cache_never_outlives_exp_and_a_negative_answer_is_kept_briefly() -> None:
    clock = _Clock()
    answers = {"short": {"active": True, "exp": clock.now + 10}, "long": {"active": True}}
    intro = _introspector(answers, clock, cache=60.0)
    assert intro.identity("short").authenticated and intro.identity("long").authenticated
    clock.now += 9
    assert intro.identity("short").authenticated and intro.sent == ["short", "long"]
    clock.now += 2  # past exp (10 s), well within cache_seconds (60 s): asked again
    assert intro.identity("short").error == model.EXPIRED
    assert intro.sent == ["short", "long", "short"]
    clock.now += 50  # past cache_seconds for "long"
    assert intro.identity("long").authenticated and intro.sent[-1] == "long"
    assert intro.identity("gone").error == model.INACTIVE
    clock.now += 4
    intro.identity("gone")
    assert intro.sent.count("gone") == 1  # negative answer cached for 5 s
    answers["gone"] = {"active": True}
    clock.now += 2
    assert intro.identity("gone").authenticated and intro.sent.count("gone") == 2


def test_under_the_event_loop_the_call_is_awaited_not_blocked_on(
    tmp_path: Path, endpoint: IntrospectionServer
) -> None:
    """RAISE mode: the check yields the pending call; the grpc.aio worker awaits it while
    other coroutines run, and a hanging endpoint ends in 401 after timeout_seconds."""
    endpoint.tokens["tok"] = {"active": True, "scope": "read"}
    endpoint.mode = "hang"
    config = _config(tmp_path, endpoint.url)
    request = to_check_request(
        {
            "path": "/api/x",
            "headers": {"authorization": "Bearer tok"},
            "context": {"policy": "api"},
        }
    )
    with pytest.raises(KeysPending):  # what the service's _identity step catches
        config.identity.introspector.identity("tok", RAISE)  # type: ignore[union-attr]

    async def run() -> tuple[Any, int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        decision = await Checker(config).check_async(request)
        stop.set()
        await task
        return decision, ticks

    decision, ticks = asyncio.run(run())
    assert (decision.allowed, decision.status) == (False, 401)
    assert ticks >= 10  # the loop ran all along the 0.3 s wait
    endpoint.release()
    assert endpoint.wait_hits(1)


def _load_error(tmp_path: Path, section: str) -> ConfigError:
    (tmp_path / "secret").write_text("s3cret\n")
    (tmp_path / "empty").write_text("\n")
    text = "identity:\n" + section + "policies:\n  - name: p\n    rules: []\n"
    with pytest.raises(ConfigError) as caught:
        load(str(write_policy(tmp_path, text)), "cel-python")
    return caught.value


GOOD = """  introspection:
    - endpoint: https://idp.example.com/introspect
      client_id: authz
      client_secret_file: secret
"""


@pytest.mark.parametrize(
    ("section", "line", "col", "fragment"),
    [
        (GOOD.replace("      client_id: authz\n", ""), 3, 7, "client_id must be a string"),
        (GOOD.replace("https://idp", "http://idp"), 3, 17, "endpoint must be an https URL"),
        (GOOD.replace("client_secret_file: secret", "client_secret_file: nope"), 5, 27, "no such"),
        (GOOD.replace("client_secret_file: secret", "client_secret_file: empty"), 5, 27, "empty"),
        (GOOD + "      cache_seconds: '60'\n", 6, 7, "cache_seconds must be a non-negative"),
        (GOOD + "      timeout_seconds: 0\n", 6, 7, "timeout_seconds must be > 0"),
        (GOOD + "      timeout_seconds: [1]\n", 6, 7, "timeout_seconds must be a non-negative"),
        (GOOD + "      cache_seconds: 60\n      cache_seconds: 0\n", 7, 7, "duplicate key"),
        (GOOD + "      cache_secs: 60\n", 6, 7, "did you mean 'cache_seconds'"),
        (GOOD + GOOD.split("\n", 1)[1], 6, 17, "duplicate introspection endpoint"),
        (
            GOOD.replace(
                "    - endpoint: https://idp.example.com/introspect\n      client_id",
                "    - client_id",
            ),
            3,
            7,
            "endpoint must be a string",
        ),
        (GOOD + "      negative_cache_seconds: five\n", 6, 7, "negative_cache_seconds must be"),
        (GOOD + "      audiences: 7\n", 6, 7, "audiences must be a list of strings"),
        (GOOD + "      groups_claim: [a]\n", 6, 7, "groups_claim must be a string"),
        (GOOD + "      from: {header: x, query: y}\n", 6, 7, "exactly one of header"),
        (GOOD + "      client_id: again\n", 6, 7, "duplicate key 'client_id'"),
        ("  introspection: https://idp.example.com\n", 2, 3, "non-empty list"),
        ("  introspection:\n", 2, 3, "non-empty list"),
    ],
)
def test_a_missing_wrong_typed_or_duplicated_setting_is_refused_at_load(
    tmp_path: Path, section: str, line: int, col: int, fragment: str
) -> None:
    """None of these may load (and so leave tokens unjudged, or judged by a default the
    operator did not write): the server refuses the file and keeps its last good config."""
    error = _load_error(tmp_path, section)
    found = [(i.line, i.col) for i in error.issues if fragment in i.message]
    assert (line, col) in found, [str(i) for i in error.issues]


def test_http_is_allowed_to_a_loopback_endpoint_only(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    text = (
        "identity:\n"
        + GOOD.replace("https://idp.example.com", "http://127.0.0.1:9")
        + "policies:\n  - name: p\n    rules: []\n"
    )
    config = load(str(write_policy(tmp_path, text)), "cel-python")
    (entry,) = config.identity.config.introspection
    assert entry.client_secret == "s3cret" and "s3cret" not in repr(entry)
