"""One Check's state, passed explicitly from the service down to the decision.

A RequestContext is made once per request (by the service, `decide()` or the response
path) and holds what the stages share: the decision id, the one config snapshot the
request is decided by, its attributes, the detector memo (results and the deadline the
detectors stop at) and the values precomputed for the expressions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authz.attributes import Attributes
from authz.functions import REQUEST_HANDLE, DetectorMemo
from authz.policy.compiler import PRECOMPUTED, CompiledConfig


@dataclass(slots=True)
class RequestContext:
    """A request's decision id, config, attributes, detector memo and precomputed values."""

    decision_id: str
    config: CompiledConfig
    attrs: Attributes | None = None  # None until the proto is read (a malformed one: never)
    memo: DetectorMemo = field(default_factory=DetectorMemo)
    precomputed: dict[str, Any] | None = None  # `_fn[id]` -> result, once computed

    def bind(self, variables: dict[str, Any]) -> Any:
        """The engine's activation for `variables`, with this request's precomputed
        detector results and, when an expression calls a detector itself, its memo's
        handle."""
        if self.precomputed is not None:
            variables[PRECOMPUTED] = self.precomputed
        if self.config.live_calls:
            variables[REQUEST_HANDLE] = self.config.functions.handle(self.memo)
        return self.config.engine.bind(variables)
