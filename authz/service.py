"""The gRPC Check handler: a short list of stage calls that always ends in a decision."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import Any

from authz import decision_log
from authz._proto.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from authz.attributes import Attributes, from_check_request
from authz.decide import decide
from authz.decision import INTERNAL_ERROR, REQUEST_ERROR, Decision, deny
from authz.errors import RequestError
from authz.policy.compiler import CompiledConfig
from authz.response import to_check_response

_log = logging.getLogger("authz.service")


def check(config: CompiledConfig, request: external_auth_pb2.CheckRequest) -> Decision:
    """Decide one CheckRequest; any failure becomes a deny with its reason."""
    decision_id = uuid.uuid4().hex
    started = time.perf_counter()
    attrs: Attributes | None = None
    try:
        attrs = from_check_request(request, config.limits)
        if config.needs_identity:
            attrs = dataclasses.replace(attrs, identity=config.identity.resolve(attrs))
        decision = decide(config, attrs, decision_id)
    except RequestError as exc:
        decision = deny(REQUEST_ERROR, f"malformed request: {exc}", decision_id, status=400)
    except Exception:  # fail closed on bugs too, and keep the traceback for operators
        _log.exception("internal error while deciding %s", decision_id)
        decision = deny(INTERNAL_ERROR, "internal error", decision_id, status=500)
    decision_log.record(decision, attrs, time.perf_counter() - started)
    return decision


class AuthorizationService(external_auth_pb2_grpc.AuthorizationServicer):
    """envoy.service.auth.v3.Authorization over the currently loaded config."""

    def __init__(self, config: CompiledConfig) -> None:
        self.config = config

    def Check(
        self, request: external_auth_pb2.CheckRequest, context: Any
    ) -> external_auth_pb2.CheckResponse:
        """Answer Envoy with the decision for this request."""
        return to_check_response(check(self.config, request))
