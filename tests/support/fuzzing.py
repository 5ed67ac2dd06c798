"""What the property tests and `make fuzz` share: the policy under attack (one rule may
allow, for one team) and a CheckRequest built from arbitrary parts."""

from __future__ import annotations

from authz._proto.envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2

POLICY = """
policies:
  - name: ai
    match: request.path.startsWith("/v1/")
    rules:
      - {name: inj, when: 'injection(llm.prompt_text).size() > 0', effect: deny}
      - {name: leak, when: 'secrets(llm.messages).size() > 0 || pii(mcp.arguments).size() > 0',
         effect: deny}
      - {name: tools, when: 'mcp.calls.exists(c, c.tool == "x")', effect: deny}
      - name: member
        when: '"x-team" in request.headers && request.headers["x-team"] == "ml"'
        effect: allow
        headers: {x-echo: 'request.headers["x-team"]'}
"""
ALLOWING_RULE = "member"


def check_request(
    path: str, headers: dict[str, str], body: bytes, context: dict[str, str] | None = None
) -> external_auth_pb2.CheckRequest:
    """A POST CheckRequest with arbitrary path, headers, raw body and route context."""
    http = attribute_context_pb2.AttributeContext.HttpRequest(
        method="POST", path=path, headers=headers, raw_body=body
    )
    ctx = attribute_context_pb2.AttributeContext(
        request=attribute_context_pb2.AttributeContext.Request(http=http),
        context_extensions=context or {},
    )
    return external_auth_pb2.CheckRequest(attributes=ctx)
