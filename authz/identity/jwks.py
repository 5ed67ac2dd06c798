"""JSON Web Key Sets from a file or an http(s) URI, cached and refreshed without blocking.

A URI's key set is cached for `refresh_seconds` (cachetools TTLCache). When it expires the
last good set keeps serving while one background fetch runs. A token whose `kid` is unknown
may trigger a refresh at most once per `min_refresh_interval_seconds`, and waits for it at
most `fetch_timeout_seconds`; a failing or hanging endpoint never replaces the last good set.

Who waits depends on the `fetch` argument the caller passes down (never on hidden state):
WAIT blocks the calling thread, bounded; RAISE raises KeysPending so an event loop can await
the fetch and ask again; SKIP returns what is there (the second ask, after the wait).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent import futures

import cachetools
import jwt

_log = logging.getLogger("authz.identity.jwks")
MAX_JWKS_BYTES = 1 << 20
MAX_KEYS = 100

KeySet = dict[str, list[jwt.PyJWK]]  # kid ("" when absent) -> keys


class JwksError(Exception):
    """A key set that cannot be read or parsed."""


WAIT, RAISE, SKIP = "wait", "raise", "skip"


class KeysPending(Exception):
    """A key fetch the caller should wait for (at most `timeout` seconds), then ask again."""

    def __init__(self, fetch: futures.Future[KeySet], timeout: float) -> None:
        super().__init__("waiting for a JWKS fetch")
        self.fetch = fetch
        self.timeout = timeout

    def wait(self) -> None:
        """Block until the fetch ends or the timeout passes (a failure is not raised)."""
        with contextlib.suppress(Exception):  # the outcome is read from the key set after
            self.fetch.result(timeout=self.timeout)


def parse_jwks(text: str | bytes) -> KeySet:
    """Parse a JWKS document; keys that cannot be used are skipped, none usable is an error."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise JwksError(f"not JSON: {exc}") from None
    raw_keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(raw_keys, list):
        raise JwksError('a JWKS must be an object with a "keys" list')
    keys: KeySet = {}
    problems = []
    for index, raw in enumerate(raw_keys[:MAX_KEYS]):
        if not isinstance(raw, dict):
            problems.append(f"key {index} is not an object")
            continue
        if raw.get("use", "sig") != "sig":
            continue  # an encryption key never verifies a signature
        try:
            key = jwt.PyJWK(raw)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            problems.append(f"key {index}: {exc}")
            continue
        kid = raw.get("kid")
        keys.setdefault(kid if isinstance(kid, str) else "", []).append(key)
    if not keys:
        detail = "; ".join(problems) or "the keys list is empty"
        raise JwksError(f"no usable key ({detail})")
    return keys


def fetch_uri(uri: str, timeout: float) -> KeySet:
    """GET a JWKS over http(s) and parse it."""
    request = urllib.request.Request(uri, headers={"accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            body = resp.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise JwksError(f"cannot fetch {uri}: {exc}") from None
    if len(body) > MAX_JWKS_BYTES:
        raise JwksError(f"{uri}: JWKS larger than {MAX_JWKS_BYTES} bytes")
    return parse_jwks(body)


class StaticJwks:
    """Keys read once from a file (hot reload re-reads the whole config)."""

    def __init__(self, path: str) -> None:
        try:
            with open(path, "rb") as fh:
                self._keys = parse_jwks(fh.read())
        except OSError as exc:
            raise JwksError(f"cannot read {path}: {exc.strerror}") from None

    def keys(self, kid: str | None, fetch: str = WAIT) -> list[jwt.PyJWK]:
        """Keys with this kid, or every key when the token names none."""
        return _select(self._keys, kid)


def _select(keys: KeySet, kid: str | None) -> list[jwt.PyJWK]:
    if kid is None:
        return [k for group in keys.values() for k in group]
    return list(keys.get(kid, ()))


class RemoteJwks:
    """Keys from a URI, with the caching and refresh rules in the module docstring."""

    def __init__(
        self,
        uri: str,
        refresh_seconds: float,
        fetch_timeout: float,
        min_refresh_interval: float,
        fetch: Callable[[str, float], KeySet] = fetch_uri,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri = uri
        self._fetch = fetch
        self._clock = clock
        self._timeout = fetch_timeout
        self._interval = min_refresh_interval
        self._cache: cachetools.TTLCache[str, KeySet] = cachetools.TTLCache(
            maxsize=1, ttl=refresh_seconds, timer=clock
        )
        self._last_good: KeySet = {}
        self._lock = threading.Lock()
        self._pending: futures.Future[KeySet] | None = None
        self._last_forced = float("-inf")
        self._pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jwks")
        self.fetches = 0
        self.failures = 0

    def _refresh(self) -> futures.Future[KeySet]:
        """Start one fetch unless one is running; return it."""
        with self._lock:
            if self._pending is None or self._pending.done():
                try:
                    self._pending = self._pool.submit(self._fetch_and_store)
                except RuntimeError:  # closed: no more fetches, the last good keys serve on
                    self._pending = futures.Future()
                    self._pending.set_exception(JwksError(f"{self.uri}: key set closed"))
            return self._pending

    def _fetch_and_store(self) -> KeySet:
        self.fetches += 1
        try:
            keys = self._fetch(self.uri, self._timeout)
        except JwksError as exc:
            self.failures += 1
            with self._lock:
                held = sum(len(group) for group in self._last_good.values())
            if held:
                _log.warning("JWKS fetch failed, keeping the last good %d keys: %s", held, exc)
            else:  # nothing was ever fetched: tokens from this issuer are refused
                _log.warning("JWKS fetch failed and no keys were ever fetched: %s", exc)
            raise
        with self._lock:
            self._last_good = keys
            self._cache["keys"] = keys
        return keys

    def _wait(self, pending: futures.Future[KeySet], fetch: str) -> None:
        # On a timeout or a failed fetch the last good set keeps serving.
        if fetch == RAISE:
            raise KeysPending(pending, self._timeout)
        if fetch == WAIT:
            KeysPending(pending, self._timeout).wait()

    def keys(self, kid: str | None, fetch: str = WAIT) -> list[jwt.PyJWK]:
        """Keys for a token; may wait (bounded) for a refresh when the kid is unknown."""
        current = self._cache.get("keys")
        if current is None:
            pending = self._refresh()
            if not self._last_good:
                self._wait(pending, fetch)  # nothing to serve yet: wait, bounded
            current = self._last_good
        found = _select(current, kid)
        if found or kid is None:
            return found
        now = self._clock()
        with self._lock:
            allowed = now - self._last_forced >= self._interval
            if allowed:
                self._last_forced = now
        if allowed:
            self._wait(self._refresh(), fetch)
            return _select(self._last_good, kid)
        return []

    def close(self) -> None:
        """Stop the fetch thread; a fetch running ends on its own timeout, none starts."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def prime(self) -> None:
        """Fetch once at start, bounded; a failure leaves the set empty (tokens then deny)."""
        KeysPending(self._refresh(), self._timeout).wait()


Jwks = StaticJwks | RemoteJwks
