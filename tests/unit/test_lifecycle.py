"""Lifecycle: a swap replaces the whole config snapshot between checks, never inside one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from authz.decision import DEFAULT
from authz.request_file import to_check_request
from authz.service import Checker
from tests.support import tokens
from tests.support.jwks_server import JwksServer
from tests.unit.helpers import compile_policy

KEY = tokens.rsa_key("2026-01")

ALLOW_ALL = """
policies:
  - name: p
    rules:
      - {name: anyone, when: 'true', effect: allow}
"""


def _trusting(server: JwksServer) -> str:
    return f"""
identity:
  jwt:
    - issuer: {tokens.ISSUER}
      audiences: [{tokens.AUDIENCE}]
      jwks_uri: {server.uri}
      fetch_timeout_seconds: 20
policies:
  - {{name: p, require_identity: true, rules: []}}
"""


def test_a_check_in_flight_keeps_the_snapshot_it_started_with(tmp_path: Path) -> None:
    """A check paused on a key fetch finishes on its own config although a swap landed
    meanwhile; the next check decides on the new one."""
    server = JwksServer(tokens.jwks(KEY))
    server.mode = "hang"
    try:
        (tmp_path / "old").mkdir()
        (tmp_path / "new").mkdir()
        old = compile_policy(tmp_path / "old", _trusting(server), "cel-cpp")
        new = compile_policy(tmp_path / "new", ALLOW_ALL, "cel-cpp")
        checker = Checker(old)
        request = to_check_request(
            {"headers": {"authorization": f"Bearer {tokens.mint(KEY)}"}, "context": {"policy": "p"}}
        )

        async def scenario() -> tuple[object, object]:
            in_flight = asyncio.ensure_future(checker.check_async(request))
            await asyncio.to_thread(server.wait_hits, 1)  # paused on the fetch
            assert not in_flight.done()
            assert checker.swap(new) is old
            server.mode = "ok"
            server.release()
            return await in_flight, await checker.check_async(request)

        first, second = asyncio.run(scenario())
    finally:
        server.close()
    # The old config authenticated the token, then denied by its default; the new one allows.
    assert (first.allowed, first.reason, first.status) == (False, DEFAULT, 403), first
    assert second.allowed and second.rule == "anyone", second
    assert checker.config is new
