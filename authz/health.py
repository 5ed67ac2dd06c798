"""The one gRPC health poller: grpc.health.v1 `Check` on a target, answered as what was
seen. The supervisor's /readyz, `deploy/envoy/run_demo.py` and the test fixtures read it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

Probe = Callable[[], str | None]  # None once SERVING, else what it said instead


@contextmanager
def grpc_health(target: str, service: str = "", timeout: float = 1.0) -> Iterator[Probe]:
    """A probe on one channel (closed on exit): `Check(service)` says SERVING."""
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)

        def probe() -> str | None:
            try:
                reply: Any = stub.Check(request, timeout=timeout)
            except grpc.RpcError as err:
                call = err if isinstance(err, grpc.Call) else None
                return f"{call.code()}: {call.details()}" if call else repr(err)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return None
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

        yield probe


def serving(target: str, service: str = "") -> bool:
    """Whether `target` answers SERVING now (one Check, on a channel of its own)."""
    with grpc_health(target, service) as probe:
        return probe() is None
