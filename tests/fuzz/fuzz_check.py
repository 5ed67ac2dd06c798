"""`make fuzz`: atheris drives the whole CheckRequest -> attributes -> decision path (and the
parsers and detectors under it) with coverage-guided inputs; any uncaught exception is a
crash. Default: one million runs. Crashers are saved under tests/fuzz/crashers/; turn each
into a case of tests/unit/test_hostile_catalogue.py.

    python tests/fuzz/fuzz_check.py -runs=1000000 tests/fuzz/corpus
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports():
    from authz.policy.compiler import load
    from authz.service import check
    from tests.support.fuzzing import ALLOWING_RULE, POLICY, check_request

# The shared policy, plus one matching everything else: body JSON and query reads.
FUZZ_POLICY = (
    POLICY
    + """
  - name: example
    match: "true"
    rules:
      - {name: body, when: 'body.json != null && "a" in body.json', effect: deny}
      - {name: query, when: '"q" in request.query', effect: allow}
"""
)


def _config():
    folder = Path(tempfile.mkdtemp(prefix="authz-fuzz-"))
    (folder / "policy.yaml").write_text(FUZZ_POLICY)
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
    decision = check(CONFIG, check_request(path, headers, body))
    if decision.reason == "internal_error":
        raise RuntimeError(f"internal error deciding {data!r}")
    if decision.allowed and decision.rule not in (ALLOWING_RULE, "query"):
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
