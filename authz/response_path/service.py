"""envoy.service.ext_proc.v3.ExternalProcessor/Process: a thin adapter over ResponseStream.

Served on the same port as Authorization/Check, in every worker, with the same Checker
(its current config, metrics, decision log and tracer). One gRPC stream is one HTTP
request; every message gets exactly one reply, in order. A bug ends the stream with an
error, which Envoy (`failure_mode_allow: false`) turns into a 500: the body never passes
unjudged. A stream never ends cleanly before the response does, since Envoy would then let
the rest through without asking.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from authz._proto.envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from authz.decide import await_steps, run_steps
from authz.response_path.stream import ResponseStream

if TYPE_CHECKING:
    from authz.service import Checker

PROCESSOR_NAME = "envoy.service.ext_proc.v3.ExternalProcessor"


def _call_metadata(checker: Checker, context: Any) -> dict[str, str] | None:
    if not checker.tracing.enabled:  # only the trace parent needs the call's metadata
        return None
    return {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}


class ExternalProcessor(pb_grpc.ExternalProcessorServicer):
    """ExternalProcessor over a Checker, for a thread-pool server (a stream holds a thread
    for as long as its response lasts)."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    def Process(
        self, request_iterator: Iterator[pb.ProcessingRequest], context: Any
    ) -> Iterator[pb.ProcessingResponse]:
        """Answer each message of one request's stream."""
        stream = ResponseStream(self.checker, _call_metadata(self.checker, context))
        try:
            for request in request_iterator:
                yield run_steps(stream.handle(request))
        finally:
            stream.close()


class AsyncExternalProcessor(pb_grpc.ExternalProcessorServicer):
    """ExternalProcessor over a Checker, for grpc.aio: a key fetch is awaited."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    async def Process(
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: Any
    ) -> AsyncIterator[pb.ProcessingResponse]:
        """Answer each message of one request's stream."""
        stream = ResponseStream(self.checker, _call_metadata(self.checker, context))
        try:
            async for request in request_iterator:
                yield await await_steps(stream.handle(request))
        finally:
            stream.close()
