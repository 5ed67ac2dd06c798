"""Lifecycle: a swap replaces the whole config snapshot between checks, never inside one;
Runtime.close stops the threads a config started; `authz serve`'s options reach workers whole."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import threading
from dataclasses import fields, replace
from pathlib import Path

from authz.attributes import Attributes, from_check_request
from authz.cli_args import parser
from authz.decision import DEFAULT
from authz.policy.compiler import CompiledConfig, load
from authz.reload import Reloader
from authz.request_file import to_check_request
from authz.runtime import Runtime
from authz.serve_options import ServeOptions
from authz.service import Checker
from authz.workers import worker_command
from tests.support import tokens
from tests.support.jwks_server import JwksServer
from tests.unit.helpers import remote_jwks_policy, write_policy

KEY, OTHER = tokens.rsa_key("2026-01"), tokens.rsa_key("2026-02")

ALLOW_ALL = """
policies:
  - name: p
    rules:
      - {name: anyone, when: 'true', effect: allow}
"""


def _trusting(tmp_path: Path, server: JwksServer, name: str = "policy.yaml") -> CompiledConfig:
    return remote_jwks_policy(tmp_path, server.uri, timeout=20, name=name)


def test_a_check_in_flight_keeps_the_snapshot_it_started_with(tmp_path: Path) -> None:
    """A check paused on a key fetch finishes on its own config although a swap landed
    meanwhile; the next check decides on the new one."""
    server = JwksServer(tokens.jwks(KEY))
    server.mode = "hang"
    try:
        old = _trusting(tmp_path, server, "old.yaml")
        new = load(str(write_policy(tmp_path, ALLOW_ALL, "new.yaml")), "cel-cpp")
        checker = Checker(old)
        request = to_check_request(
            {"headers": {"authorization": f"Bearer {tokens.mint(KEY)}"}, "context": {"policy": "p"}}
        )

        async def scenario() -> tuple[object, object]:
            in_flight = asyncio.ensure_future(checker.check_async(request))
            assert await asyncio.to_thread(server.wait_requests, 1)  # paused on the fetch
            assert not in_flight.done()
            assert checker.swap(new) is old
            server.mode = "ok"
            server.release()
            return await in_flight, await checker.check_async(request)

        first, second = asyncio.run(scenario())
    finally:
        server.stop()
    # The old config authenticated the token, then denied by its default; the new one allows.
    assert (first.allowed, first.reason, first.status) == (False, DEFAULT, 403), first
    assert second.allowed and second.rule == "anyone", second
    assert checker.config is new


def _jwks_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("jwks")]


def test_closing_the_runtime_stops_the_jwks_fetch_threads(tmp_path: Path) -> None:
    """The key fetch started a thread; Runtime.close ends it, and a second close is a no-op."""
    server = JwksServer(tokens.jwks(KEY))
    try:
        config = _trusting(tmp_path, server)
        before = set(_jwks_threads())
        runtime = Runtime(Checker(config))
        config.identity.start()  # the first fetch, on the fetcher's own thread
        started = [t for t in _jwks_threads() if t not in before]
        assert started and all(t.is_alive() for t in started)
        runtime.close()
        for thread in started:
            thread.join(timeout=10)  # an event to wait for; the assert says whether it came
        assert not any(t.is_alive() for t in started)
        runtime.close()
    finally:
        server.stop()


def test_a_reload_leaves_no_fetch_thread_of_the_retired_config(tmp_path: Path) -> None:
    """Reloads retire configs without closing them (checks may still hold them); once
    nothing holds a retired config, its fetch thread ends."""
    server = JwksServer(tokens.jwks(KEY))
    try:
        config = _trusting(tmp_path, server)
        before = set(_jwks_threads())
        config.identity.start()
        retired = [t for t in _jwks_threads() if t not in before]
        checker = Checker(config)
        del config
        assert Reloader(checker, checker.config.path, "cel-cpp", 0).reload("test")
        gc.collect()
        for thread in retired:
            thread.join(timeout=10)
        assert retired and not any(t.is_alive() for t in retired)
        Runtime(checker).close()
    finally:
        server.stop()


def test_a_closed_key_set_serves_its_last_good_keys(tmp_path: Path) -> None:
    """After close no fetch starts, and a token signed with a key already fetched still
    verifies (the retired config fails closed only for keys it never had)."""
    server = JwksServer(tokens.jwks(KEY))
    try:
        config = _trusting(tmp_path, server)
        config.identity.start()
        config.close()
        hits = server.hits
        known = config.identity.resolve(_attrs(config, tokens.mint(KEY)))
        unknown = config.identity.resolve(_attrs(config, tokens.mint(OTHER)))
    finally:
        server.stop()
    assert known.authenticated, known
    assert not unknown.authenticated and unknown.error, unknown
    assert server.hits == hits  # the unknown kid asked for no fetch


def test_every_serve_flag_survives_the_round_trip_to_a_worker() -> None:
    """Each `authz serve` flag, set away from its default, reaches a worker's command line
    and parses back to the same options (a flag added later fails here until it does)."""
    argv = [
        "serve",
        *("--config", "p.yaml", "--listen", "127.0.0.1:7000", "--engine", "cel-python"),
        *("--threads", "3", "--workers", "5", "--max-concurrent", "7"),
        *("--check-budget-ms", "12.5", "--max-queue-ms", "33.0", "--watch-interval", "0.5"),
        *("--admin-listen", "127.0.0.1:7001", "--otlp-endpoint", "http://otel:4317"),
        *("--decision-log", "d.log", "--log-headers", "--log-body", "80", "--no-subject"),
        *("--log-replay", "--log-explain", "--reuse-port"),
    ]
    options = ServeOptions.from_args(parser().parse_args(argv))
    defaults = ServeOptions(config="")
    unset = [
        f.name for f in fields(options) if getattr(options, f.name) == getattr(defaults, f.name)
    ]
    assert unset == [], f"set these flags in this test: {unset}"
    serve = _serve_parser()
    dests = {a.dest for a in serve._actions if a.dest != "help"}
    assert dests == {f.name for f in fields(ServeOptions)}  # the parser and the value agree

    command = worker_command(options)
    assert command[:4] == [sys.executable, "-m", "authz", "serve"]
    worker = ServeOptions.from_args(parser().parse_args(command[3:]))
    assert worker == replace(options, workers=1, reuse_port=True, admin_listen="")


def _serve_parser() -> argparse.ArgumentParser:
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["serve"]


def _attrs(config: CompiledConfig, token: str) -> Attributes:
    request = to_check_request({"headers": {"authorization": f"Bearer {token}"}})
    return from_check_request(request, config.limits)


def test_closing_a_serving_runtime_stops_the_reloader_and_closes_the_log(tmp_path: Path) -> None:
    """Runtime.serving builds what `authz serve` runs; close ends the reload watch (after
    any reload under way) and closes the decision log file it opened."""
    path = write_policy(tmp_path, ALLOW_ALL)
    options = ServeOptions(str(path), decision_log=str(tmp_path / "d.log"), watch_interval=0)
    runtime = Runtime.serving(options, load(str(path), "cel-cpp"))
    assert runtime.reloader is not None
    before = set(threading.enumerate())
    runtime.reloader.start()
    watching = [t for t in threading.enumerate() if t.name == "reload" and t not in before]
    assert watching
    stream = runtime.checker.log.stream
    assert stream is not None and not stream.closed
    runtime.close()
    assert not any(t.is_alive() for t in watching)
    assert stream.closed
