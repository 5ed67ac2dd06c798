"""Readiness: one poller, :func:`wait_until`, and the probes it runs (HTTP status, gRPC
health from :mod:`authz.health`, TCP accept). Every fixture and bench/ wait through it.

A probe returns ``None`` once the thing is ready, else what it saw instead (kept for the
error message). Given the :class:`Proc` being waited for, the poller fails fast, with its
log tail, as soon as that process exits.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

from authz.health import Probe, grpc_health
from tests.support.ports import LOCALHOST
from tests.support.proc import Proc


def wait_until(
    probe: Probe,
    what: str,
    timeout: float = 10.0,
    *,
    proc: Proc | None = None,
    interval: float = 0.05,
) -> None:
    """Run ``probe`` every ``interval`` s until it returns ``None``.

    Raises :class:`TimeoutError` (or, with ``proc``, :class:`ProcError` with its log tail)
    after ``timeout`` s, naming ``what`` and the probe's last answer.
    """
    end = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.check_alive("before becoming ready")
        last = probe()
        if last is None:
            return
        if time.monotonic() >= end:
            break
        time.sleep(interval)
    message = f"{what} after {timeout}s; last: {last}"
    if proc is not None:
        proc.fail(message)
    raise TimeoutError(message)


def http_status(url: str, status: int = 200) -> Probe:
    """Probe: GET ``url`` answers ``status``."""

    def probe() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                code = resp.status
        except urllib.error.HTTPError as err:
            code = err.code
        except OSError as err:  # URLError, connection refused/reset, timeouts
            return f"{type(err).__name__}: {err}"
        return None if code == status else f"HTTP {code}"

    return probe


def tcp_accepts(port: int, host: str = LOCALHOST) -> Probe:
    """Probe: something accepts TCP connections on ``host:port``."""

    def probe() -> str | None:
        with socket.socket() as sock:
            sock.settimeout(1.0)
            code = sock.connect_ex((host, port))
        return None if code == 0 else f"connect: errno {code}"

    return probe


def wait_http_ready(
    url: str, timeout: float = 10.0, *, status: int = 200, proc: Proc | None = None
) -> None:
    """Poll ``url`` with GET until it answers ``status``."""
    wait_until(http_status(url, status), f"{url} not ready ({status})", timeout, proc=proc)


def wait_grpc_serving(
    target: str, timeout: float = 10.0, *, service: str = "", proc: Proc | None = None
) -> None:
    """Poll grpc.health.v1 ``Check(service)`` on ``target`` until it returns SERVING."""
    what = f"gRPC health of {target!r} (service={service!r}) not SERVING"
    with grpc_health(target, service) as probe:
        wait_until(probe, what, timeout, proc=proc, interval=0.1)


def wait_port(
    port: int, timeout: float = 10.0, *, host: str = LOCALHOST, proc: Proc | None = None
) -> None:
    """Poll until something accepts TCP connections on ``host:port``."""
    wait_until(tcp_accepts(port, host), f"nothing listening on {host}:{port}", timeout, proc=proc)
