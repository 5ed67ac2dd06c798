"""authz's Checker behind grpc.aio instead of the thread pool, for `make bench` to compare.

Same policies, same Checker; only the server model differs. Measured, not shipped: see the
README for which one won and why the service keeps the thread pool.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from authz._proto.envoy.service.auth.v3 import (
    external_auth_pb2,
    external_auth_pb2_grpc,
)
from authz.policy.compiler import load
from authz.response import to_check_response
from authz.service import Checker


class AioAuthorization(external_auth_pb2_grpc.AuthorizationServicer):
    """Check on the event loop."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: Any
    ) -> external_auth_pb2.CheckResponse:
        """Decide on the loop (the work is CPU-bound)."""
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        return to_check_response(self.checker.check(request, metadata))


async def serve(config: str, port: int) -> None:
    """Serve until cancelled."""
    server = grpc.aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
        AioAuthorization(Checker(load(config))), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()


def main() -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.config, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
