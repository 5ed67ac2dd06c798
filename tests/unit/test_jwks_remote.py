"""JWKS from an http endpoint: caching, refresh on unknown kid (rate-limited), rotation, and
an endpoint that fails or hangs (bounded wait; last good keys kept; otherwise a deny)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authz.attributes import from_check_request
from authz.decision import DEFAULT
from authz.identity.jwks import RemoteJwks, fetch_uri
from authz.identity.model import Identity
from authz.policy.compiler import CompiledConfig
from authz.request_file import to_check_request
from authz.service import Checker
from tests.support import tokens
from tests.support.jwks_server import JwksServer
from tests.unit.helpers import remote_jwks_policy

OLD, NEW = tokens.rsa_key("2026-01"), tokens.rsa_key("2026-02")


@pytest.fixture
def server() -> Iterator[JwksServer]:
    """A JWKS endpoint serving the old key."""
    endpoint = JwksServer(tokens.jwks(OLD))
    yield endpoint
    endpoint.stop()


def config_for(
    tmp_path: Path, server: JwksServer, interval: float = 0.0, timeout: float = 0.3
) -> CompiledConfig:
    """A policy trusting the endpoint's keys."""
    return remote_jwks_policy(tmp_path, server.uri, interval, timeout)


def who(config: CompiledConfig, token: str) -> Identity:
    """Resolve the identity for a bearer token."""
    request = to_check_request({"headers": {"authorization": f"Bearer {token}"}})
    return config.identity.resolve(from_check_request(request, config.limits))


def test_keys_are_fetched_once_and_cached(tmp_path: Path, server: JwksServer) -> None:
    config = config_for(tmp_path, server)
    for _ in range(5):
        assert who(config, tokens.mint(OLD)).authenticated
    assert server.hits == 1


def test_unknown_kid_refreshes_at_most_once_per_interval(
    tmp_path: Path, server: JwksServer
) -> None:
    config = config_for(tmp_path, server, interval=3600)
    assert who(config, tokens.mint(OLD)).authenticated
    for _ in range(5):
        assert who(config, tokens.mint(NEW)).error == "unknown_key"
    assert server.hits == 2  # the first fetch, then one forced refresh in the interval


def test_key_rotation_mid_traffic(tmp_path: Path, server: JwksServer) -> None:
    config = config_for(tmp_path, server)
    outcomes: list[tuple[str, bool]] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            outcomes.append(("old", who(config, tokens.mint(OLD)).authenticated))
            outcomes.append(
                ("forged", who(config, tokens.mint(tokens.rsa_key(NEW.kid))).authenticated)
            )

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for worker in workers:
        worker.start()
    server.document = tokens.jwks(OLD, NEW)  # the issuer publishes the new key
    assert who(config, tokens.mint(NEW)).authenticated  # unknown kid -> refresh -> found
    server.document = tokens.jwks(NEW)  # ... then retires the old one
    config.identity.jwt.providers[tokens.ISSUER].jwks._cache.clear()  # TTL elapsed
    for _ in range(10_000):  # the background refresh lands; old tokens stop verifying
        if not who(config, tokens.mint(OLD)).authenticated:
            break
    else:
        pytest.fail("the retired key kept verifying")
    stop.set()
    for worker in workers:
        worker.join(30)
    assert who(config, tokens.mint(NEW)).authenticated
    assert not any(ok for kind, ok in outcomes if kind == "forged")
    assert any(ok for kind, ok in outcomes if kind == "old")


def test_failing_endpoint_keeps_the_last_good_keys(tmp_path: Path, server: JwksServer) -> None:
    config = config_for(tmp_path, server)
    assert who(config, tokens.mint(OLD)).authenticated
    server.mode = "fail"
    assert who(config, tokens.mint(NEW)).error == "unknown_key"  # refresh failed
    assert who(config, tokens.mint(OLD)).authenticated  # last good set still serves


def run_bounded(call: Any) -> Any:
    """Run call in a thread; fail the test if it does not return (hung on the endpoint)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "a check waited on a hanging JWKS endpoint"
    return result[0]


def test_hanging_endpoint_is_a_bounded_wait(tmp_path: Path, server: JwksServer) -> None:
    config = config_for(tmp_path, server)
    assert who(config, tokens.mint(OLD)).authenticated
    server.mode = "hang"
    unknown = run_bounded(lambda: who(config, tokens.mint(NEW)))
    assert unknown.error == "unknown_key"
    known = run_bounded(lambda: who(config, tokens.mint(OLD)))
    assert known.authenticated  # the last good keys, without waiting


def test_no_keys_yet_and_endpoint_hangs_means_deny(tmp_path: Path, server: JwksServer) -> None:
    server.mode = "hang"
    config = config_for(tmp_path, server)
    first = run_bounded(lambda: who(config, tokens.mint(OLD)))
    assert (first.authenticated, first.error) == (False, "unknown_key")


def test_ttl_expiry_refreshes_in_the_background() -> None:
    now = [0.0]
    fetched: list[str] = []
    documents = [{"a": ["key-a"]}, {"b": ["key-b"]}]

    def fetch(uri: str, timeout: float) -> Any:
        fetched.append(uri)
        return documents[min(len(fetched) - 1, 1)]

    jwks = RemoteJwks(
        "http://x/jwks",
        refresh_seconds=60,
        fetch_timeout=1,
        min_refresh_interval=3600,
        fetch=fetch,
        clock=lambda: now[0],
    )
    jwks.prime()
    assert jwks.keys("a") == ["key-a"] and len(fetched) == 1
    now[0] = 61.0  # past the TTL: served from the last good set while a refresh runs
    assert jwks.keys("a") == ["key-a"]
    jwks._pending.result(5)  # type: ignore[union-attr]
    assert len(fetched) == 2 and jwks.keys("b") == ["key-b"]


def test_fetch_uri_refuses_non_jwks(server: JwksServer) -> None:
    from authz.identity.jwks import JwksError

    server.document = {"not": "a jwks"}
    with pytest.raises(JwksError, match='"keys" list'):
        fetch_uri(server.uri, 2)


def test_a_check_waits_for_the_key_fetch_its_token_started(
    tmp_path: Path, server: JwksServer
) -> None:
    """The sync Checker (authz check, the thread pool) waits, bounded, for the refresh an
    unknown kid starts, then verifies with the key that arrived."""
    config = config_for(tmp_path, server, timeout=20)
    config.identity.start()
    server.document = tokens.jwks(OLD, NEW)
    server.mode = "hang"

    def answer() -> None:
        server.mode = "ok"
        server.release()

    threading.Timer(0.3, answer).start()
    request = to_check_request(
        {"headers": {"authorization": f"Bearer {tokens.mint(NEW)}"}, "context": {"policy": "p"}}
    )
    decision = Checker(config).check(request)
    # Authenticated, then the policy's default deny; without the wait: 401 unknown_key.
    assert decision.reason == DEFAULT and decision.status == 403, decision
