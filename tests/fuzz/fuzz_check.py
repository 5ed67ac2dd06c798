"""`make fuzz`: atheris drives the whole CheckRequest -> attributes -> decision path (and the
parsers and detectors under it) with coverage-guided inputs; any uncaught exception is a
crash. Default: one million runs. Crashers go to tests/fuzz/crashers/ and become
regression cases in tests/unit/test_fuzz_regressions.py.

    python tests/fuzz/fuzz_check.py -runs=1000000 tests/fuzz/corpus
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from authz._proto.envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2
    from authz.policy.compiler import load
    from authz.service import check

ROOT = Path(__file__).resolve().parents[2]
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
  - name: example
    match: "true"
    rules:
      - {name: body, when: 'body.json != null && "a" in body.json', effect: deny}
      - {name: query, when: '"q" in request.query', effect: allow}
"""


def _config():
    folder = Path(tempfile.mkdtemp(prefix="authz-fuzz-"))
    (folder / "policy.yaml").write_text(POLICY)
    return load(str(folder / "policy.yaml"))


CONFIG = _config()
PATHS = ["/v1/chat/completions", "/v1/messages", "/v1/responses", "/mcp", "/x", "/v1/"]


def one_input(data: bytes) -> None:
    """Build a CheckRequest from fuzz bytes and decide it; only a decision may come out."""
    fdp = atheris.FuzzedDataProvider(data)
    path = fdp.PickValueInList(PATHS) + fdp.ConsumeUnicodeNoSurrogates(20)
    headers = {}
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        headers[fdp.ConsumeUnicodeNoSurrogates(8)] = fdp.ConsumeUnicodeNoSurrogates(24)
    body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2048))
    http = attribute_context_pb2.AttributeContext.HttpRequest(
        method="POST", path=path, headers=headers, raw_body=body
    )
    request = external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(
            request=attribute_context_pb2.AttributeContext.Request(http=http)
        )
    )
    decision = check(CONFIG, request)
    if decision.code == "internal_error":
        raise RuntimeError(f"internal error deciding {data!r}")
    if decision.allowed and decision.rule not in ("member", "query"):
        raise RuntimeError(f"allowed by {decision.rule!r}: {data!r}")


def main() -> None:
    """Run atheris (libFuzzer flags pass through)."""
    args = sys.argv
    if not any(a.startswith("-runs=") for a in args):
        args = [*args, "-runs=1000000"]
    crashers = ROOT / "tests" / "fuzz" / "crashers"
    crashers.mkdir(exist_ok=True)
    if not any(a.startswith("-artifact_prefix=") for a in args):
        args = [*args, f"-artifact_prefix={crashers}/"]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
