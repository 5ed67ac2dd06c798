"""``python -m authz serve`` as a subprocess, ready when its gRPC health says SERVING."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tests.support.health import wait_grpc_serving
from tests.support.paths import REPO_ROOT
from tests.support.ports import LOCALHOST, free_port
from tests.support.proc import Proc


class AuthzHandle:
    """A running ``python -m authz serve``."""

    def __init__(self, port: int, config_path: Path, proc: Proc) -> None:
        self.port = port
        self.config_path = config_path
        self.proc = proc
        self.admin_port = 0

    def admin_url(self, path: str = "/") -> str:
        """URL on the service's admin port (/metrics, /healthz, /readyz)."""
        return f"http://{LOCALHOST}:{self.admin_port}{path}"

    @property
    def target(self) -> str:
        """gRPC target string, ``127.0.0.1:PORT``."""
        return f"{LOCALHOST}:{self.port}"

    def log_text(self) -> str:
        """The service's stdout/stderr."""
        return self.proc.log_text()

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop the service now (teardown does it anyway)."""
        return self.proc.stop(timeout)


PATIENT_FLAGS = ("--check-budget-ms", "--max-queue-ms")
PATIENT_MS = "5000"


def start_authz(
    workdir: Path,
    config: Path | str,
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    wait: bool = True,
    timeout: float = 120.0,
) -> AuthzHandle:
    """Start ``python -m authz serve --config CONFIG --listen 127.0.0.1:PORT``.

    With ``wait`` (default) block until grpc.health.v1 reports SERVING; pass ``wait=False``
    to test start-up failures via ``handle.proc.wait()`` / ``handle.log_text()``.
    """
    port = port or free_port()
    config_path = Path(config)
    admin_port = free_port()
    # Each service gets its own admin port unless the test chose one.
    admin_args = (
        [] if "--admin-listen" in extra_args else ["--admin-listen", f"{LOCALHOST}:{admin_port}"]
    )
    # One process per service unless the test asks for workers (fewer processes, faster).
    if "--workers" not in extra_args:
        admin_args += ["--workers", "1"]
    # Patient budgets unless the test is about them: on a CPU-starved machine a check or the
    # event loop can lag past the 250 ms defaults, which denies (check_timeout) or marks the
    # worker not ready (Envoy then ejects it): right in production, noise in a test about
    # something else. The budget tests set their own.
    for flag in PATIENT_FLAGS:
        if flag not in extra_args:
            admin_args += [flag, PATIENT_MS]
    proc = Proc(
        [
            sys.executable,
            "-m",
            "authz",
            "serve",
            "--config",
            config_path,
            "--listen",
            f"{LOCALHOST}:{port}",
            *admin_args,
            *extra_args,
        ],
        log_path=workdir / f"authz-{port}.log",
        name=f"authz:{port}",
        env=env,
        cwd=REPO_ROOT,
    ).start()
    handle = AuthzHandle(port, config_path, proc)
    handle.admin_port = admin_port
    if wait:
        try:
            wait_grpc_serving(handle.target, timeout, proc=proc)
        except BaseException:
            proc.stop()
            raise
    return handle


AuthzFactory = Callable[..., AuthzHandle]
"""Type of the ``authz_factory`` fixture: ``(config, **kw) -> AuthzHandle``."""
