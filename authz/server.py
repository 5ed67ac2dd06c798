"""The process: gRPC server with health checking, the admin port, and a graceful stop.

By default the gRPC server is grpc.aio on one event loop (`threads=0`): checks are CPU-bound,
so one thread holding the GIL with no hand-offs is the fastest model measured, and a token
whose keys are being fetched awaits the fetch without holding up the other checks.
`threads=N` serves from a pool of N threads instead (kept for `make bench` to compare).

A worker that cannot keep up says so: a watch measures how late the event loop runs a
timer (the wait of a check queued behind others); past `max_queue_seconds`, /readyz answers
503 and the gRPC health service NOT_SERVING until the lag is back under the limit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from authz._proto.envoy.service.auth.v3 import external_auth_pb2_grpc
from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2_grpc
from authz.observability.admin import AdminServer
from authz.response_path.service import (
    PROCESSOR_NAME,
    AsyncExternalProcessor,
    ExternalProcessor,
)
from authz.runtime import Runtime
from authz.serve_options import ServeOptions
from authz.service import AsyncAuthorizationService, AuthorizationService, Checker

SERVICE_NAME = "envoy.service.auth.v3.Authorization"
DRAIN_SECONDS = 10.0
ACCEPT_SECONDS = DRAIN_SECONDS / 2  # of the drain, at most this long taking sent calls
IDLE_SECONDS = 0.1
WATCH_SECONDS = 0.05  # how often the loop watch looks
_log = logging.getLogger("authz.server")


class ServerError(Exception):
    """The server could not start (for example, the address is taken)."""


def split_host_port(address: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); raises ServerError on a malformed address."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ServerError(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class LoopWatch:
    """How late the event loop runs a 50 ms timer: the time a check waits behind the ones
    queued before it. Read from other threads (the admin port) as well."""

    def __init__(self, limit_seconds: float, metrics: Any) -> None:
        self.limit = limit_seconds  # 0: never report overload
        self.metrics = metrics
        self.lag = 0.0
        self._armed = time.monotonic()  # when the timer last started waiting

    def current(self) -> float:
        """The lag now: the last one measured, or longer if the timer is late already."""
        late = time.monotonic() - self._armed - WATCH_SECONDS
        return max(self.lag, late, 0.0)

    def overloaded(self) -> bool:
        """Whether the lag is over the limit."""
        return self.limit > 0 and self.current() > self.limit

    async def run(self, on_change: Any) -> None:
        """Measure until cancelled; await `on_change(overloaded)` when the state flips."""
        state = False
        while True:
            self._armed = time.monotonic()
            await asyncio.sleep(WATCH_SECONDS)
            self.lag = max(time.monotonic() - self._armed - WATCH_SECONDS, 0.0)
            self.metrics.loop_lag.set(self.lag)
            if self.overloaded() != state:
                state = not state
                await on_change(state)


class CountedService(AuthorizationService):
    """The thread-pool Check service, counting the checks in flight (for /readyz, which a
    stop can then be judged against) as the grpc.aio service does."""

    def __init__(self, checker: Checker) -> None:
        super().__init__(checker)
        self.in_flight = 0
        self._lock = threading.Lock()

    def Check(self, request: Any, context: Any) -> Any:
        """Answer as AuthorizationService does, counted while it runs."""
        with self._lock:
            self.in_flight += 1
        try:
            return super().Check(request, context)
        finally:
            with self._lock:
                self.in_flight -= 1


class Server:
    """The gRPC server, its health service and the admin HTTP port, started and stopped
    together over one Runtime. `serve()` runs it until SIGTERM or SIGINT, then closes the
    runtime."""

    def __init__(self, runtime: Runtime, options: ServeOptions) -> None:
        self.runtime = runtime
        self.checker = checker = runtime.checker
        self.reloader = runtime.reloader
        self.listen = options.listen
        self.threads = threads = options.threads
        self.ready = False
        self.watch = LoopWatch(options.max_queue_seconds if not threads else 0.0, checker.metrics)
        # Workers share the port (SO_REUSEPORT); a lone server must own it. Past
        # max_concurrent checks in flight, answer at once (RESOURCE_EXHAUSTED, which Envoy
        # treats as an error: status_on_error, never an allow) instead of queueing.
        self._options: dict[str, Any] = {
            "options": [("grpc.so_reuseport", int(options.reuse_port))],
            "maximum_concurrent_rpcs": options.max_concurrent or None,
        }
        self.admin: AdminServer | None = None
        self.service: CountedService | AsyncAuthorizationService | None = None
        if options.admin_listen:
            host, port = split_host_port(options.admin_listen)
            try:
                self.admin = AdminServer(host, port, checker.metrics, self.readiness)
            except OSError as exc:
                raise ServerError(
                    f"cannot listen on {options.admin_listen}: {exc.strerror}"
                ) from None

    def readiness(self) -> dict[str, Any]:
        """What /readyz reports, with the loaded config's generation and hash."""
        config = self.checker.config
        overloaded = self.watch.overloaded()
        state: dict[str, Any] = {
            "ready": self.ready and not overloaded,
            "policies": len(config.policies),
            "config": config.path,
        }
        if not self.threads:  # the watch runs on the event loop only
            state["queue_ms"] = round(self.watch.current() * 1000, 1)
        if self.service is not None:
            state["in_flight"] = self.service.in_flight
        if overloaded:
            state["overloaded"] = True
        if self.reloader is not None:
            state.update(generation=self.reloader.generation, sha256=self.reloader.hash)
        return state

    def _bind(self, server: Any) -> None:
        try:
            port = server.add_insecure_port(self.listen)
        except RuntimeError as exc:
            raise ServerError(f"cannot listen on {self.listen}: {exc}") from None
        if port == 0 and not self.listen.startswith("unix:"):
            raise ServerError(f"cannot listen on {self.listen}")

    def _started(self) -> None:
        """After the port is bound: admin port, remote keys (bounded), then SERVING."""
        if self.admin is not None:
            self.admin.start()
        self.checker.config.identity.start()
        self.ready = True
        self.checker.metrics.config_reloads.labels("success").inc()
        self.checker.metrics.config_generation.set(1)
        if self.reloader is not None:
            self.reloader.start()
        _log.info(
            "serving %s on %s with %d policies (%s)",
            SERVICE_NAME,
            self.listen,
            len(self.checker.config.policies),
            f"{self.threads} threads" if self.threads else "asyncio",
        )

    def _stopping(self) -> None:
        self.ready = False
        if self.reloader is not None:
            self.reloader.stop()
        _log.info("stopping: draining in-flight checks for up to %.0fs", DRAIN_SECONDS)

    def _stopped(self) -> None:
        if self.admin is not None:
            self.admin.stop()
        self.runtime.close()

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; drain, then return 0. Raises ServerError when the
        port cannot be bound."""
        if self.threads:
            return self._serve_threads()
        return asyncio.run(self._serve_aio())

    async def _serve_aio(self) -> int:
        server = grpc.aio.server(**self._options)
        service = self.service = AsyncAuthorizationService(self.checker)
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(service, server)
        external_processor_pb2_grpc.add_ExternalProcessorServicer_to_server(
            AsyncExternalProcessor(self.checker), server
        )
        checks = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checks, server)
        self._bind(server)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._sighup)
        await server.start()
        await loop.run_in_executor(None, self._started)  # a remote JWKS fetch may block
        for name in ("", SERVICE_NAME, PROCESSOR_NAME):
            await checks.set(name, health_pb2.HealthCheckResponse.SERVING)

        async def overloaded(state: bool) -> None:
            if not self.ready:
                return  # stopping: graceful shutdown owns the health status
            status = health_pb2.HealthCheckResponse
            _log.warning(
                "event loop %.0f ms behind: %s",
                self.watch.lag * 1000,
                "not ready" if state else "ready again",
            )
            for name in ("", SERVICE_NAME, PROCESSOR_NAME):
                await checks.set(name, status.NOT_SERVING if state else status.SERVING)

        watch = asyncio.create_task(self.watch.run(overloaded))
        await stop.wait()
        watch.cancel()
        self._stopping()
        await checks.enter_graceful_shutdown()
        # grpc.aio takes the calls that have arrived one at a time, between checks; stopping
        # at once would cancel those not taken yet. Keep taking them until none has been in
        # flight for a moment (at most ACCEPT_SECONDS: by then a health-checking Envoy has
        # moved away), then refuse new calls and let the rest finish.
        # A check runs the loop for its whole length, so "idle" is judged by what changed
        # between two looks, not by the clock alone.
        started = idle = loop.time()
        seen = -1
        while True:
            now = loop.time()
            if service.in_flight or service.started != seen:
                idle, seen = now, service.started
            if now - idle >= IDLE_SECONDS or now - started >= ACCEPT_SECONDS:
                break
            await asyncio.sleep(0.005)
        await server.stop(DRAIN_SECONDS - (loop.time() - started))
        self._stopped()
        return 0

    def _serve_threads(self) -> int:
        pool = futures.ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="check")
        server = grpc.server(pool, **self._options)
        self.service = CountedService(self.checker)
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(self.service, server)
        external_processor_pb2_grpc.add_ExternalProcessorServicer_to_server(
            ExternalProcessor(self.checker), server
        )
        checks = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checks, server)
        self._bind(server)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._sighup())
        server.start()
        self._started()
        for name in ("", SERVICE_NAME, PROCESSOR_NAME):
            checks.set(name, health_pb2.HealthCheckResponse.SERVING)
        stop.wait()
        self._stopping()
        checks.enter_graceful_shutdown()
        server.stop(grace=DRAIN_SECONDS).wait()
        self._stopped()
        return 0

    def _sighup(self) -> None:
        if self.reloader is not None:
            self.reloader.request()
