"""The floor: an always-allow ext_authz server, sync grpcio, one process, nothing else.

`make bench` measures authz against this: whatever it costs, authz cannot be cheaper.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from authz._proto.envoy.service.auth.v3 import (
    external_auth_pb2,
    external_auth_pb2_grpc,
)

ALLOW = external_auth_pb2.CheckResponse(ok_response=external_auth_pb2.OkHttpResponse())


class AlwaysAllow(external_auth_pb2_grpc.AuthorizationServicer):
    """Allows everything."""

    def Check(self, request: object, context: object) -> external_auth_pb2.CheckResponse:
        """Allow."""
        return ALLOW


def main() -> int:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(AlwaysAllow(), server)
    # Health as authz has it, so the bench waits for both the same way; never on the path.
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
