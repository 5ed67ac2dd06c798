"""The demo echo upstream (``deploy/envoy/demo_upstream.py``) as a subprocess that counts
the requests it answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.health import wait_http_ready
from tests.support.paths import DEPLOY_ENVOY_DIR, REPO_ROOT
from tests.support.ports import LOCALHOST, free_port
from tests.support.proc import Proc


class UpstreamHandle:
    """A running ``deploy/envoy/demo_upstream.py``."""

    def __init__(self, port: int, proc: Proc, request_log: Path) -> None:
        self.port = port
        self.proc = proc
        self.request_log = request_log

    def url(self, path: str = "/") -> str:
        """Direct URL to the upstream (bypassing Envoy)."""
        return f"http://{LOCALHOST}:{self.port}{path}"

    def requests(self) -> list[dict[str, str]]:
        """Every request the upstream has answered so far: ``[{"method", "path"}, ...]``."""
        try:
            text = self.request_log.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def log_text(self) -> str:
        """The upstream's stdout/stderr."""
        return self.proc.log_text()

    def stop(self) -> int | None:
        """Stop the upstream now (teardown does it anyway)."""
        return self.proc.stop()


def start_upstream(
    workdir: Path, *, port: int | None = None, timeout: float = 10.0
) -> UpstreamHandle:
    """Start the demo upstream on ``port`` (default: a free one) and wait until it answers."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    request_log = workdir / f"upstream-{port}.requests.jsonl"
    request_log.touch()
    proc = Proc(
        [
            sys.executable,
            DEPLOY_ENVOY_DIR / "demo_upstream.py",
            "--port",
            str(port),
            "--log",
            request_log,
        ],
        log_path=workdir / f"upstream-{port}.log",
        name=f"upstream:{port}",
        cwd=REPO_ROOT,
    ).start()
    handle = UpstreamHandle(port, proc, request_log)
    try:
        # Readiness probe via a path the tests will never use, then forget it.
        wait_http_ready(handle.url("/__ready"), timeout, proc=proc)
        request_log.write_text("", encoding="utf-8")
    except BaseException:
        proc.stop()
        raise
    return handle
