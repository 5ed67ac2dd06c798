"""What one process builds to decide checks, with one owner and one `close()`.

`authz serve` builds metrics, tracing, the decision log (and its file), the checker over the
compiled config (whose JWKS fetchers, introspection calls and injection model run threads)
and the reloader; `authz check` builds a checker alone. Whichever it is, `close()` stops
all of it once: the server calls it after the drain, the commands when they are done.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO

from authz.observability.decision_log import ALWAYS_MASKED, DecisionLog, LogOptions
from authz.observability.metrics import Metrics
from authz.observability.tracing import Tracing
from authz.policy.compiler import CompiledConfig
from authz.reload import Reloader
from authz.serve_options import ServeOptions
from authz.service import Checker


def masked_headers(config: CompiledConfig) -> frozenset[str]:
    """Headers never logged in clear: the fixed set plus those that carry credentials."""
    identity = config.identity.config
    extra = {loc.header for p in identity.jwt for loc in p.locations if loc.header}
    if identity.api_keys is not None:
        extra.add(identity.api_keys.header)
    return ALWAYS_MASKED | extra


def _decision_stream(path: str) -> IO[str] | None:
    """'-' is stdout, '' no log; else the file, appended to (OSError when it cannot be)."""
    if path == "-":
        return sys.stdout
    if path == "":
        return None
    return open(path, "a", encoding="utf-8")  # Runtime.close closes it


class Runtime:
    """The checker and everything around it that holds a thread or a file."""

    def __init__(
        self,
        checker: Checker,
        reloader: Reloader | None = None,
        files: tuple[IO[str], ...] = (),
    ) -> None:
        self.checker = checker
        self.reloader = reloader
        self._files = files
        self._closed = False

    @classmethod
    def serving(cls, options: ServeOptions, config: CompiledConfig) -> Runtime:
        """What `authz serve` runs in one process; OSError when the decision log cannot
        be opened."""
        metrics = Metrics()
        log_options = LogOptions(
            headers=options.log_headers,
            body_chars=options.log_body,
            subject=not options.no_subject,
            masked_headers=masked_headers(config),
            replay=options.log_replay,
            explain=options.log_explain,
        )
        stream = _decision_stream(options.decision_log)
        tracing = Tracing(
            metrics, endpoint=options.otlp_endpoint, record_subject=not options.no_subject
        )
        log = DecisionLog(stream, log_options)
        checker = Checker(config, tracing, metrics, log, options.budget_seconds)
        reloader = Reloader(checker, options.config, options.engine, options.watch_interval)
        owned = (stream,) if stream is not None and stream is not sys.stdout else ()
        return cls(checker, reloader, owned)

    def close(self) -> None:
        """Stop the reloader, the config's threads and the exporter; close the log file.
        A second call does nothing."""
        if self._closed:
            return
        self._closed = True
        if self.reloader is not None:
            self.reloader.stop()
            self.reloader.wait()  # the config closed below is the last one swapped in
        self.checker.config.close()
        self.checker.tracing.shutdown()
        for stream in self._files:
            stream.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
