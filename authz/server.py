"""The process: gRPC server with health checking, the admin port, and a graceful stop."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from authz._proto.envoy.service.auth.v3 import external_auth_pb2_grpc
from authz.observability.admin import AdminServer
from authz.reload import Reloader
from authz.service import AuthorizationService, Checker

SERVICE_NAME = "envoy.service.auth.v3.Authorization"
DRAIN_SECONDS = 10.0
_log = logging.getLogger("authz.server")


class ServerError(Exception):
    """The server could not start (for example, the address is taken)."""


def split_host_port(address: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); raises ServerError on a malformed address."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ServerError(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class Server:
    """The gRPC server, its health service and the admin HTTP port, started and stopped
    together."""

    def __init__(
        self,
        checker: Checker,
        listen: str,
        admin_listen: str | None,
        threads: int = 16,
        reuse_port: bool = False,
        max_concurrent: int | None = None,
    ) -> None:
        self.checker = checker
        self.listen = listen
        self.ready = False
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="check"),
            # Workers share the port (SO_REUSEPORT); a lone server must own it.
            options=[("grpc.so_reuseport", int(reuse_port))],
            # Past this many checks in flight, answer at once (RESOURCE_EXHAUSTED, which
            # Envoy treats as an error: status_on_error, never an allow) instead of queueing.
            maximum_concurrent_rpcs=max_concurrent,
        )
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
            AuthorizationService(checker), self.grpc
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        self.admin: AdminServer | None = None
        self.reloader: Reloader | None = None
        if admin_listen:
            host, port = split_host_port(admin_listen)
            try:
                self.admin = AdminServer(host, port, checker.metrics, self.readiness)
            except OSError as exc:
                raise ServerError(f"cannot listen on {admin_listen}: {exc.strerror}") from None

    def readiness(self) -> dict[str, Any]:
        """What /readyz reports, with the loaded config's generation and hash."""
        config = self.checker.config
        state: dict[str, Any] = {
            "ready": self.ready,
            "policies": len(config.policies),
            "config": config.path,
        }
        if self.reloader is not None:
            state.update(generation=self.reloader.generation, sha256=self.reloader.hash)
        return state

    def start(self) -> None:
        """Bind, start, fetch remote keys, then report SERVING."""
        try:
            port = self.grpc.add_insecure_port(self.listen)
        except RuntimeError as exc:
            raise ServerError(f"cannot listen on {self.listen}: {exc}") from None
        if port == 0 and not self.listen.startswith("unix:"):
            raise ServerError(f"cannot listen on {self.listen}")
        self.grpc.start()
        if self.admin is not None:
            self.admin.start()
        self.checker.config.identity.start()  # remote key sets, bounded
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.ready = True
        self.checker.metrics.config_reloads.labels("success").inc()
        self.checker.metrics.config_generation.set(1)
        if self.reloader is not None:
            self.reloader.start()
        _log.info(
            "serving %s on %s with %d policies",
            SERVICE_NAME,
            self.listen,
            len(self.checker.config.policies),
        )

    def stop(self) -> None:
        """Stop taking checks, drain those in flight, flush spans."""
        self.ready = False
        if self.reloader is not None:
            self.reloader.stop()
        _log.info("stopping: draining in-flight checks for up to %.0fs", DRAIN_SECONDS)
        self.health.enter_graceful_shutdown()
        self.grpc.stop(grace=DRAIN_SECONDS).wait()
        if self.admin is not None:
            self.admin.stop()
        self.checker.tracing.shutdown()


def serve(server: Server) -> int:
    """Run until SIGTERM or SIGINT; drain, then return 0."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    reloader = server.reloader
    signal.signal(signal.SIGHUP, lambda *_: reloader.request() if reloader else None)
    server.start()
    stop.wait()
    server.stop()
    return 0
