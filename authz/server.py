"""The process: gRPC server with health checking, and a graceful stop on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from authz._proto.envoy.service.auth.v3 import external_auth_pb2_grpc
from authz.policy.compiler import CompiledConfig
from authz.service import AuthorizationService

SERVICE_NAME = "envoy.service.auth.v3.Authorization"
DRAIN_SECONDS = 10.0
_log = logging.getLogger("authz.server")


class ServerError(Exception):
    """The server could not start (for example, the address is taken)."""


def serve(config: CompiledConfig, listen: str, threads: int = 16) -> int:
    """Serve until SIGTERM or SIGINT; drain in-flight checks, then return 0."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="check"),
        options=[("grpc.so_reuseport", 0)],
    )
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(AuthorizationService(config), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise ServerError(f"cannot listen on {listen}: {exc}") from None
    if port == 0 and not listen.startswith("unix:"):
        raise ServerError(f"cannot listen on {listen}")
    server.start()
    config.identity.start()  # remote key sets, bounded; before health says SERVING
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    _log.info("serving %s on %s with %d policies", SERVICE_NAME, listen, len(config.policies))

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    _log.info("stopping: draining in-flight checks for up to %.0fs", DRAIN_SECONDS)
    health_servicer.enter_graceful_shutdown()
    server.stop(grace=DRAIN_SECONDS).wait()
    return 0
