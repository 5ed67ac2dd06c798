"""Opaque bearer tokens, judged by the authorization server (RFC 7662 token introspection).

A bearer token that is not a JWT, or a JWT whose `iss` no `jwt` provider trusts, is POSTed
(`token=...&token_type_hint=access_token`) to each configured endpoint in turn with HTTP
Basic client authentication (RFC 6749 2.3.1: id and secret form-encoded, then base64). The
first `"active": true` answer authenticates the caller as `identity.method:
"introspection"` with `subject` (`sub`), `scopes` (`scope`), `audiences` (`aud`), `claims`
(the whole answer) and `expires_at` (`exp`).

Refused, never allowed: `"active": false` or an unknown token (`inactive_token`), an
answer whose `exp` has passed (`expired`) or whose `nbf` has not come (`not_yet_valid`), an
`aud` outside the endpoint's `audiences` (`bad_audience`), and an endpoint that is down,
slow, answers other than 200 or sends something that is not an introspection answer
(`introspection_failed`). Each is a 401 `invalid_token` under `require_identity`.

Cache (cachetools TLRUCache, bounded, keyed by the token's SHA-256): an active answer for at
most `cache_seconds` and never past its `exp`; an inactive one for `negative_cache_seconds`;
a failure for FAILURE_SECONDS, so a broken endpoint is not asked again by every request.

Who waits follows the remote JWKS model (authz/identity/jwks.py, the `fetch` argument): the call
runs on a small thread pool; under the grpc.aio worker the check raises `IntrospectionPending`,
awaits the call for at most the endpoints' timeouts and asks again (SKIP), so the event loop
never blocks; a synchronous caller (WAIT) blocks for at most that long.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import cachetools

from authz.config.identity import IntrospectionConfig
from authz.identity import model
from authz.identity.jwks import RAISE, SKIP, WAIT, KeysPending
from authz.identity.jwt_verify import claims_identity
from authz.identity.model import Identity, strings

_log = logging.getLogger("authz.identity.introspection")

MAX_ENTRIES = 10_000
MAX_PENDING = 256  # calls queued or running; past it a token is refused, not queued
MAX_ANSWER_BYTES = 1 << 16
MAX_TOKEN_BYTES = 16384
FAILURE_SECONDS = 1.0
WORKERS = 4
# RFC 6750 2.1 b64token: anything else is never sent to the authorization server.
OPAQUE_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# (status, body) of one POST; raises OSError when the endpoint cannot be reached in time.
Post = Callable[[str, bytes, dict[str, str], float], tuple[int, bytes]]


class IntrospectionPending(KeysPending):
    """An introspection call the caller should wait for (bounded), then ask again."""


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST with urllib; a non-2xx status is returned, not raised."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: each part form-encoded, then `id:secret` in base64."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass(frozen=True)
class _Outcome:
    """What the authorization servers said of one token."""

    identity: Identity  # authenticated, or unauthenticated with the reason
    expires: float | None = None  # `exp` of an active token


def _failed(detail: str) -> _Outcome:
    return _Outcome(
        Identity(
            method="introspection", error=model.INTROSPECTION_FAILED, claims={"detail": detail}
        )
    )


def _refused(reason: str, issuer: str = "") -> _Outcome:
    return _Outcome(Identity(method="introspection", issuer=issuer, error=reason))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def judge(config: IntrospectionConfig, status: int, body: bytes, now: float) -> _Outcome:
    """One endpoint's answer as an outcome (module docstring)."""
    if status != 200:
        return _failed(f"{config.endpoint} answered HTTP {status}")
    if len(body) > MAX_ANSWER_BYTES:
        return _failed(f"{config.endpoint}: answer larger than {MAX_ANSWER_BYTES} bytes")
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return _failed(f"{config.endpoint}: answer is not JSON")
    if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
        return _failed(f"{config.endpoint}: answer has no boolean 'active'")
    issuer = answer.get("iss") if isinstance(answer.get("iss"), str) else ""
    if answer["active"] is not True:
        return _refused(model.INACTIVE, issuer)
    for name in ("exp", "nbf", "iat"):
        if name in answer and not _number(answer[name]):
            return _failed(f"{config.endpoint}: '{name}' is not a number")
    exp, nbf = answer.get("exp"), answer.get("nbf")
    if exp is not None and exp <= now:
        return _refused(model.EXPIRED, issuer)
    if nbf is not None and nbf > now:
        return _refused(model.NOT_YET_VALID, issuer)
    if config.audiences and not set(strings(answer.get("aud"))) & set(config.audiences):
        return _refused(model.BAD_AUDIENCE, issuer)
    identity = claims_identity(answer, "introspection", config.claims)
    return _Outcome(identity, float(exp) if exp is not None else None)


class Introspector:
    """Every configured endpoint, one bounded cache and the calls in flight."""

    def __init__(
        self,
        configs: tuple[IntrospectionConfig, ...],
        post: Post = http_post,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.configs = configs
        self._post = post
        self._clock = clock
        self.timeout = sum(c.timeout_seconds for c in configs)  # longest a check waits
        self._answers: cachetools.TLRUCache[str, _Outcome] = cachetools.TLRUCache(
            maxsize=MAX_ENTRIES, ttu=self._until, timer=clock
        )
        self._failures: cachetools.TTLCache[str, _Outcome] = cachetools.TTLCache(
            maxsize=MAX_ENTRIES, ttl=FAILURE_SECONDS, timer=clock
        )
        self._pending: dict[str, futures.Future[_Outcome]] = {}
        self._lock = threading.Lock()
        self._pool = futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="introspect")
        self.calls = 0  # POSTs sent, for tests and operators

    def close(self) -> None:
        """Stop the call threads; calls running end on their own timeout, none starts."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _until(self, _key: str, outcome: _Outcome, now: float) -> float:
        """When a cached answer stops being used: never past `exp`."""
        if not outcome.identity.authenticated:
            return now + min(c.negative_cache_seconds for c in self.configs)
        cap = now + min(c.cache_seconds for c in self.configs)
        return cap if outcome.expires is None else min(cap, outcome.expires)

    def identity(self, token: str, fetch: str = WAIT) -> Identity:
        """The identity an opaque token proves (module docstring); may raise
        IntrospectionPending or wait, as `fetch` says."""
        if len(token) > MAX_TOKEN_BYTES:
            return Identity(method="introspection", error=model.TOO_LARGE)
        if not OPAQUE_TOKEN.fullmatch(token):
            return Identity(method="introspection", error=model.MALFORMED)
        key = hashlib.sha256(token.encode()).hexdigest()
        known = self._known(key)
        if known is not None:
            return known
        if fetch == SKIP:  # waited already: the call is still running
            return _failed("no answer within timeout_seconds").identity
        call = self._call(key, token)
        if call is None:
            return _failed("too many introspection calls in flight, or closed").identity
        if fetch == RAISE:
            raise IntrospectionPending(call, self.timeout)
        IntrospectionPending(call, self.timeout).wait()
        known = self._known(key)
        return known if known is not None else _failed("no answer within timeout").identity

    def _known(self, key: str) -> Identity | None:
        with self._lock:
            outcome = self._answers.get(key) or self._failures.get(key)
        if outcome is None:
            return None
        if outcome.expires is not None and outcome.expires <= self._clock():
            return _refused(model.EXPIRED, outcome.identity.issuer).identity
        return outcome.identity

    def _call(self, key: str, token: str) -> futures.Future[_Outcome] | None:
        """The call for this token: the one in flight, or a new one."""
        with self._lock:
            running = self._pending.get(key)
            if running is not None:
                return running
            if len(self._pending) >= MAX_PENDING:
                return None
            try:
                call = self._pool.submit(self._introspect, key, token)
            except RuntimeError:  # closed (the process is stopping): the check denies
                return None
            self._pending[key] = call
            return call

    def _introspect(self, key: str, token: str) -> _Outcome:
        try:
            outcome = self._ask_each(token)
            with self._lock:
                if outcome.identity.error == model.INTROSPECTION_FAILED:
                    self._failures[key] = outcome
                else:
                    self._answers[key] = outcome
            return outcome
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def _ask_each(self, token: str) -> _Outcome:
        """The first active answer; else inactive when every endpoint answered; else the
        failure."""
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
        refused: _Outcome | None = None
        failure: _Outcome | None = None
        for config in self.configs:
            headers = {
                "authorization": basic_auth(config.client_id, config.client_secret),
                "content-type": "application/x-www-form-urlencoded",
                "accept": "application/json",
            }
            self.calls += 1
            try:
                status, answer = self._post(
                    config.endpoint, body.encode(), headers, config.timeout_seconds
                )
            except (OSError, ValueError) as exc:  # refused, reset, timed out, bad URL
                _log.warning("introspection at %s failed: %s", config.endpoint, exc)
                failure = _failed(f"{config.endpoint}: {exc}")
                continue
            outcome = judge(config, status, answer, self._clock())
            if outcome.identity.authenticated:
                return outcome
            if outcome.identity.error == model.INTROSPECTION_FAILED:
                _log.warning("introspection: %s", outcome.identity.claims.get("detail"))
                failure = outcome
            else:
                refused = refused or outcome
        return failure or refused or _failed("no introspection endpoint")
