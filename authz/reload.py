"""Hot reload: the policy file and the files it names (JWKS, API keys) are watched, and
SIGHUP asks for a reload too.

A new config is read and compiled on the side, and the tests it carries (`tests:`) run on
it; only if all that succeeds does it replace the
old one, in one assignment, so checks in flight finish on the config they started with. A
broken config is refused with the same FILE:LINE:COL message `authz validate` prints,
logged and counted, and the last good config keeps serving. Each worker process reloads
for itself (the supervisor forwards SIGHUP).
"""

from __future__ import annotations

import hashlib
import logging
import threading

from authz.errors import ConfigError, ConfigIssue
from authz.policy.compiler import CompiledConfig, load
from authz.policytest import embedded_tests_pass
from authz.service import Checker

_log = logging.getLogger("authz.reload")


def fingerprint(paths: tuple[str, ...]) -> str:
    """SHA-256 over the files' names and contents (a missing file counts as empty)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as fh:
                digest.update(fh.read())
        except OSError:
            digest.update(b"\0missing")
    return digest.hexdigest()


class Reloader:
    """Watches the config's files and swaps in a new config when they change."""

    def __init__(
        self, checker: Checker, path: str, engine: str | None, interval: float = 1.0
    ) -> None:
        self.checker = checker
        self.path = path
        self.engine = engine
        self.interval = interval
        self.generation = 1
        self.hash = fingerprint(checker.config.files)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reload", daemon=True)

    def start(self) -> None:
        """Start watching."""
        self.checker.metrics.config_generation.set(self.generation)
        self.checker.metrics.config_info.labels(self.hash).set(1)
        self._thread.start()

    def request(self) -> None:
        """Reload now (SIGHUP)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop watching (a reload under way still finishes; `wait` for it)."""
        self._stop.set()
        self._wake.set()

    def wait(self) -> None:
        """Wait for the watch to end, so no reload swaps a config in after this."""
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            forced = self._wake.wait(self.interval if self.interval > 0 else None)
            self._wake.clear()
            if self._stop.is_set():
                return
            current = fingerprint(self.checker.config.files)
            if forced or current != self.hash:
                self.reload("SIGHUP" if forced else "file change")

    def reload(self, why: str) -> bool:
        """Load, compile and swap; False (old config kept) when the new one is refused."""
        metrics = self.checker.metrics
        before = fingerprint(self.checker.config.files)
        try:
            config: CompiledConfig = load(self.path, self.engine)
            failures = embedded_tests_pass(self.path, config)
            if failures:
                raise ConfigError(
                    [
                        ConfigIssue(
                            self.path, 1, 1, "the config's own tests fail:\n" + "\n".join(failures)
                        )
                    ]
                )
        except ConfigError as exc:
            self.hash = before  # do not retry the same broken content every second
            metrics.config_reloads.labels("failure").inc()
            _log.error(
                "reload (%s) refused; still serving generation %d:\n%s", why, self.generation, exc
            )
            return False
        config.identity.start()  # remote key sets, bounded, before it serves
        # The retired config is not closed here: a check still holding it may need its key
        # fetcher. Its pools' idle threads exit once the last such check lets go of it
        # (ThreadPoolExecutor wakes them when it is collected); Runtime.close closes the
        # current one.
        self.checker.swap(config)
        self.generation += 1
        metrics.config_info.labels(self.hash).set(0)
        self.hash = fingerprint(config.files)
        metrics.config_info.labels(self.hash).set(1)
        metrics.config_reloads.labels("success").inc()
        metrics.config_generation.set(self.generation)
        _log.info(
            "reloaded (%s): generation %d, %d policies, sha256 %s",
            why,
            self.generation,
            len(config.policies),
            self.hash[:12],
        )
        return True
