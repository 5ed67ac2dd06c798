"""Several worker processes sharing one port (SO_REUSEPORT), each with its own compiled
policies, under a supervisor that owns the admin port.

The supervisor checks the config once (a broken one stops it before any worker starts),
starts `authz serve` N times with the same options (`ServeOptions.for_worker`: one
process, `--reuse-port`, no admin port), restarts a worker that dies,
forwards SIGTERM/SIGINT (each worker drains its in-flight checks) and SIGHUP, and serves
/metrics summed over the workers through prometheus-client's multiprocess mode.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from authz.health import serving
from authz.observability.admin import AdminServer
from authz.observability.metrics import MULTIPROC_ENV, Metrics
from authz.serve_options import ServeOptions
from authz.server import ServerError, split_host_port

_log = logging.getLogger("authz.workers")
RESTART_DELAY = 1.0


def worker_command(options: ServeOptions) -> list[str]:
    """How a worker starts: `authz serve` with the supervisor's options, as one process on
    the shared port, the admin port left to the supervisor."""
    return [sys.executable, "-m", "authz", "serve", *options.for_worker().to_argv()]


class Supervisor:
    """Starts, watches and stops the worker processes."""

    def __init__(self, options: ServeOptions) -> None:
        self.count = options.workers
        self.worker_options = options
        self.listen = options.listen
        self.metrics_dir = tempfile.mkdtemp(prefix="authz-metrics-")
        os.environ[MULTIPROC_ENV] = self.metrics_dir
        self.workers: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self.admin: AdminServer | None = None
        if options.admin_listen:
            host, port = split_host_port(options.admin_listen)
            try:
                self.admin = AdminServer(host, port, Metrics(), self.readiness)
            except OSError as exc:
                raise ServerError(
                    f"cannot listen on {options.admin_listen}: {exc.strerror}"
                ) from None

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(worker_command(self.worker_options), env=dict(os.environ))

    def readiness(self) -> dict[str, Any]:
        """/readyz: every worker alive and the port answering SERVING."""
        alive = sum(w.poll() is None for w in self.workers)
        ready = alive == self.count and not self.stopping.is_set() and serving(self.listen)
        return {"ready": ready, "workers": self.count, "alive": alive}

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; forward signals; return 0 after the workers drained."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        signal.signal(signal.SIGHUP, lambda *_: self._forward(signal.SIGHUP))
        self.workers = [self._spawn() for _ in range(self.count)]
        if self.admin is not None:
            self.admin.start()
        _log.info("supervising %d workers on %s", self.count, self.listen)
        while not self.stopping.wait(0.2):
            for index, worker in enumerate(self.workers):
                code = worker.poll()
                if code is not None and not self.stopping.is_set():
                    _log.error("worker %d exited with %s; restarting", worker.pid, code)
                    self._mark_dead(worker.pid)
                    time.sleep(RESTART_DELAY)
                    self.workers[index] = self._spawn()
        self._forward(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if self.admin is not None:
            self.admin.stop()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return 0

    def _forward(self, sig: int) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(sig)

    def _mark_dead(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.metrics_dir)
