"""`authz serve`'s options as one value: parsed once by the command line, read by the
runtime, the server and the supervisor, and turned back into a worker's command line by
one function, so a flag added to the parser reaches every worker without being listed again.

The defaults live here; `authz/cli_args.py` shows them as the parser's defaults.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any


def _cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ServeOptions:
    """Every `authz serve` flag, named as its flag (`--max-queue-ms` is `max_queue_ms`)."""

    config: str
    listen: str = "127.0.0.1:9191"
    engine: str | None = None
    threads: int = 0  # 0: grpc.aio on one event loop; N: a pool of N threads
    workers: int = field(default_factory=_cores)
    reuse_port: bool = False  # workers share the port; a lone server must own it
    max_concurrent: int = 256  # checks in flight per worker (0: no bound)
    check_budget_ms: float = 250.0  # 0: no budget
    max_queue_ms: float = 250.0  # 0: never report overload
    watch_interval: float = 1.0  # seconds; 0: reload only on SIGHUP
    admin_listen: str = "127.0.0.1:9192"  # '': no admin port
    otlp_endpoint: str | None = None
    decision_log: str = "-"  # a file, '-' for stdout, '' for none
    log_headers: bool = False
    log_body: int = 0
    no_subject: bool = False
    log_replay: bool = False
    log_explain: bool = False

    @classmethod
    def from_args(cls, args: Any) -> ServeOptions:
        """The options an argparse namespace of `authz serve` holds."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def to_argv(self) -> list[str]:
        """The `authz serve` arguments that parse back into these options."""
        argv: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                argv += [flag] if value else []
            elif value is not None:
                argv += [flag, str(value)]
        return argv

    def for_worker(self) -> ServeOptions:
        """A worker's options: one process on the shared port; the supervisor owns the
        admin port."""
        return dataclasses.replace(self, workers=1, reuse_port=True, admin_listen="")

    @property
    def budget_seconds(self) -> float | None:
        """A check's time budget, None for none."""
        return self.check_budget_ms / 1000 or None

    @property
    def max_queue_seconds(self) -> float:
        """How late the event loop may run before the worker says it is not ready."""
        return self.max_queue_ms / 1000
