# ruff: noqa: E501  (policy and script text kept on one line each)
"""A real peer in the same run: Cerbos 0.55 (a Go CEL policy decision point) deciding the
facts of the benchmark's chat request with rules equivalent to bench/reference.yaml.

Cerbos is fetched the ordinary ways: its binary from the npm registry (`npm pack
@cerbos/cerbos-linux-x64@0.55.0`), the protos of its API from the `cerbos` PyPI wheel
(installed with --no-deps into bench/.peer/py, read only by a subprocess that writes the
recorded request). Both land in bench/.peer/ (ignored by git) and are reused.

The facts are the ones authz reads from the request (method, path, the caller's groups, the
model, max_tokens, the body's size, the prompt text), handed to Cerbos as attributes: Cerbos
does not parse the body, verify the token or run detectors. Two variants: `regex`, whose
rules stand in for the detectors with regular expressions over the prompt (Go's regexp), and
`verdicts`, whose rules read the detectors' verdicts as boolean attributes computed by the
caller. The policy has 18 rules in 4 resource policies, as the reference has 20 in 4; a chat
request is judged by the 5 of its kind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = HERE / ".peer"
VERSION = "0.55.0"
WHEEL = "cerbos==0.16.1"
BINARY = PEER / "cerbos"
PY = PEER / "py"
SERVICE_PATH = "/cerbos.svc.v1.CerbosService/CheckResources"

_ANY = '["*"]'
POLICIES = {
    "llm_call.yaml": f"""
        apiVersion: api.cerbos.dev/v1
        resourcePolicy:
          version: default
          resource: llm_call
          rules:
            - name: unreadable
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: R.attr.provider == "" || R.attr.error != ""
            - name: injection
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: >-
                    R.attr.prompt.matches("(?i)(ignore|disregard|forget)\\\\s+(all\\\\s+)?(previous|prior|above)\\\\s+(instructions|rules)|you are now (dan|in developer mode)|reveal (your|the) system prompt")
            - name: secrets
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  all:
                    of:
                      - expr: >-
                          R.attr.prompt.matches("(AKIA|ASIA)[0-9A-Z]{{16}}|gh[pousr]_[A-Za-z0-9]{{36}}|sk-[A-Za-z0-9_-]{{20,}}|-----BEGIN [A-Z ]*PRIVATE KEY-----|(?i)(password|secret|api[_-]?key|token)\\\\s*[:=]\\\\s*[^\\\\s]{{8,}}")
                      - expr: '!(R.attr.model in ["llama-3.1-70b-internal"])'
            - name: pii
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  all:
                    of:
                      - expr: >-
                          R.attr.prompt.matches("[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\\\.[A-Za-z0-9-]+)*\\\\.[A-Za-z]{{2,}}|\\\\b\\\\d{{3}}-\\\\d{{2}}-\\\\d{{4}}\\\\b|\\\\+\\\\d{{1,3}}[ .-]?\\\\d{{2,4}}[ .-]?\\\\d{{3,4}}[ .-]?\\\\d{{3,4}}")
                      - expr: '!(R.attr.model in ["llama-3.1-70b-internal"])'
            - name: ml-team
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_ALLOW
              condition:
                match:
                  expr: >-
                    "ml" in P.attr.groups && (!has(R.attr.max_tokens) || R.attr.max_tokens <= 4096)
    """,
    "mcp_call.yaml": f"""
        apiVersion: api.cerbos.dev/v1
        resourcePolicy:
          version: default
          resource: mcp_call
          rules:
            - name: unreadable
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: R.attr.method == "" || R.attr.error != ""
            - name: unlisted
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: R.attr.method == "tools/call" && !(R.attr.tool in ["search_tickets", "read_ticket"])
            - name: secrets-in-args
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: R.attr.arguments.matches("(?i)(password|secret|token)\\\\s*[:=]")
            - name: delete
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: R.attr.tool.startsWith("delete_") && !R.attr.human_approval
            - name: agent
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_ALLOW
    """,
    "admin.yaml": f"""
        apiVersion: api.cerbos.dev/v1
        resourcePolicy:
          version: default
          resource: admin
          rules:
            - name: internal-only
              actions: ["*"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: '!R.attr.source.startsWith("10.") && !R.attr.source.startsWith("127.")'
            - name: ops-group
              actions: ["GET", "POST"]
              roles: {_ANY}
              effect: EFFECT_ALLOW
              condition:
                match:
                  expr: R.attr.group == "ops"
            - name: read-only
              actions: ["GET"]
              roles: {_ANY}
              effect: EFFECT_ALLOW
              condition:
                match:
                  expr: R.attr.path.startsWith("/admin/status")
    """,
    "public.yaml": f"""
        apiVersion: api.cerbos.dev/v1
        resourcePolicy:
          version: default
          resource: public
          rules:
            - name: no-body
              actions: ["POST"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: R.attr.size > 1024
            - name: no-debug
              actions: ["*"]
              roles: {_ANY}
              effect: EFFECT_DENY
              condition:
                match:
                  expr: R.attr.debug
            - name: static
              actions: ["GET"]
              roles: {_ANY}
              effect: EFFECT_ALLOW
              condition:
                match:
                  expr: R.attr.path.endsWith(".css") || R.attr.path.endsWith(".js")
            - name: pages
              actions: ["GET", "POST"]
              roles: {_ANY}
              effect: EFFECT_ALLOW
              condition:
                match:
                  expr: R.attr.segments <= 4
            - name: rest
              actions: ["*"]
              roles: {_ANY}
              effect: EFFECT_DENY
    """,
}

CONFIG = """
server:
  httpListenAddr: "127.0.0.1:{http}"
  grpcListenAddr: "127.0.0.1:{grpc}"
storage:
  driver: disk
  disk:
    directory: {policies}
    watchForChanges: false
audit:
  enabled: false
telemetry:
  disabled: true
"""

# Writes the recorded gRPC request (5-byte frame header + CheckResourcesRequest) and, when
# given a port, asks Cerbos once and prints the effect. Runs with bench/.peer/py on its path.
_WRITER = r"""
import json, sys
sys.path.append(sys.argv[1])
from google.protobuf import struct_pb2
from cerbos.engine.v1 import engine_pb2
from cerbos.request.v1 import request_pb2
facts = json.loads(sys.argv[2])
def attrs(d):
    return {k: struct_pb2.Value(**_kind(v)) for k, v in d.items()}
def _kind(v):
    if isinstance(v, bool): return {"bool_value": v}
    if isinstance(v, (int, float)): return {"number_value": v}
    if isinstance(v, list):
        return {"list_value": struct_pb2.ListValue(values=[struct_pb2.Value(**_kind(x)) for x in v])}
    return {"string_value": v}
request = request_pb2.CheckResourcesRequest(
    request_id="bench",
    principal=engine_pb2.Principal(id=facts["subject"], roles=["user"],
                                   attr=attrs({"groups": facts["groups"]})),
    resources=[request_pb2.CheckResourcesRequest.ResourceEntry(
        actions=[facts["method"]],
        resource=engine_pb2.Resource(kind="llm_call", id="1", attr=attrs(facts["resource"])),
    )],
)
data = request.SerializeToString()
open(sys.argv[3], "wb").write(b"\0" + len(data).to_bytes(4, "big") + data)
if len(sys.argv) > 4:
    import grpc
    from cerbos.svc.v1 import svc_pb2_grpc
    with grpc.insecure_channel("127.0.0.1:" + sys.argv[4]) as channel:
        reply = svc_pb2_grpc.CerbosServiceStub(channel).CheckResources(request, timeout=10)
    from cerbos.effect.v1 import effect_pb2
    print(effect_pb2.Effect.Name(reply.results[0].actions[facts["method"]]))
"""


def ensure() -> str | None:
    """Cerbos's binary and API protos in bench/.peer/; None when they cannot be had."""
    PEER.mkdir(exist_ok=True)
    try:
        if not BINARY.exists():
            if not shutil.which("npm"):
                return "npm is not installed"
            print(f"fetching Cerbos {VERSION} (npm pack) ...", flush=True)
            subprocess.run(
                ["npm", "pack", f"@cerbos/cerbos-linux-x64@{VERSION}", "--silent"],
                cwd=PEER,
                check=True,
                capture_output=True,
                timeout=300,
            )
            archive = next(PEER.glob("cerbos-cerbos-linux-x64-*.tgz"))
            with tarfile.open(archive) as tar:
                member = tar.getmember("package/cerbos-linux-x64")
                member.name = "cerbos"
                tar.extract(member, PEER, filter="data")
            archive.unlink()
            BINARY.chmod(0o755)
        if not (PY / "cerbos").exists():
            print(f"installing the {WHEEL} protos (pip --no-deps) ...", flush=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-deps",
                    "--target",
                    str(PY),
                    WHEEL,
                    "protoc-gen-openapiv2",
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
    except (subprocess.SubprocessError, OSError, StopIteration, KeyError) as exc:
        return f"Cerbos could not be fetched: {exc}"
    return None


def facts(body: bytes, subject: str, groups: list[str], path: str) -> dict:
    """What the chat request says, as Cerbos attributes (what authz reads from it)."""
    chat = json.loads(body)
    prompt = "\n".join(m["content"] for m in chat["messages"])
    return {
        "subject": subject,
        "groups": groups,
        "method": "POST",
        "resource": {
            "path": path,
            "provider": "openai",
            "error": "",
            "model": chat["model"],
            "max_tokens": chat["max_tokens"],
            "size": len(body),
            "prompt": prompt,
            "injection": False,
            "secrets": False,
            "pii": False,
        },
    }


VERDICTS = {  # the `verdicts` variant: the detectors' answers as facts
    "injection": "R.attr.injection",
    "secrets": "R.attr.secrets",
    "pii": "R.attr.pii",
}


def write_policies(directory: Path, variant: str = "regex") -> None:
    """The 18 rules, one file per resource kind."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in POLICIES.items():
        body = textwrap.dedent(text).strip() + "\n"
        if variant == "verdicts":
            body = _verdicts(body)
        (directory / name).write_text(
            body.replace("R.attr", "request.resource.attr").replace(
                "P.attr", "request.principal.attr"
            )
        )


def _verdicts(policy: str) -> str:
    """The policy with each prompt regex replaced by the matching verdict attribute."""
    out, rule, skip = [], "", False
    lines = policy.splitlines()
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith("- name:"):
            rule = stripped.split(":", 1)[1].strip()
        if skip:
            skip = False
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if rule in VERDICTS and "expr:" in stripped and "R.attr.prompt.matches" in following:
            key = "- expr:" if stripped.startswith("- ") else "expr:"
            out.append(f"{line[: len(line) - len(stripped)]}{key} {VERDICTS[rule]}")
            skip = True
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def write_config(directory: Path, grpc_port: int, http_port: int) -> Path:
    """Cerbos's config: loopback only, no audit, no telemetry."""
    path = directory / "cerbos.yaml"
    path.write_text(CONFIG.format(http=http_port, grpc=grpc_port, policies=directory / "policies"))
    return path


def record_request(work: Path, decided: dict, port: int | None = None) -> tuple[Path, str]:
    """Write the recorded request; with `port`, also ask Cerbos once (its effect)."""
    out = work / "cerbos.grpc"
    command = [sys.executable, "-c", _WRITER, str(PY), json.dumps(decided), str(out)]
    if port is not None:
        command.append(str(port))
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return out, done.stdout.strip()


def command(config: Path) -> list[str]:
    """The Cerbos server's command line."""
    return [str(BINARY), "server", f"--config={config}", "--log-level=error"]


def environment() -> dict[str, str]:
    """No telemetry, whatever the config says."""
    return {**os.environ, "CERBOS_NO_TELEMETRY": "1"}
