"""`make run`: the demo upstream, the authz service and Envoy, in the foreground.

Uses deploy/envoy/envoy.yaml and deploy/envoy/policies/example.yaml as shipped (Envoy on
:10000, admin :9901, authz :9191, upstream :8080). Ctrl-C stops all three.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from authz.health import serving

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENVOY = Path(sys.executable).parent / "envoy"

# Each example is a shell snippet to run from the repository root; tests/e2e/test_make_run.py
# runs every one of them against the running demo.
CURLS = """
authz demo is up: Envoy on http://127.0.0.1:10000 (admin :9901), authz on :9191.
Run these from the repository root.

  # allow: the public policy; the upstream echoes the x-authz-policy header the policy set
  curl -s http://127.0.0.1:10000/public/hello

  # allow for the ml team, deny (403, JSON body) for anyone else
  curl -s -H 'x-team: ml' http://127.0.0.1:10000/team/report
  curl -s -i -H 'x-team: sales' http://127.0.0.1:10000/team/report

  # why was that denied? the same request, decided offline, each rule with its parts
  echo '{{"path": "/team/report", "headers": {{"x-team": "sales"}},
         "context": {{"policy": "team"}}}}' \\
    | {authz} check --config deploy/envoy/policies/example.yaml --request - --explain

  # body-based deny (422)
  curl -s -i -X POST --data 'draft TOP-SECRET plan' http://127.0.0.1:10000/upload/doc

  # identity: a demo JWT (1 hour) signed with the demo key, verified by authz (/jwt/), then
  # by Envoy's jwt_authn (/jwt-authn/); without it, 401 with WWW-Authenticate naming why
  TOKEN=$({token_for} demo-user --claim 'groups=["ml"]')
  curl -s -H "authorization: Bearer $TOKEN" http://127.0.0.1:10000/jwt/me
  curl -s -H "authorization: Bearer $TOKEN" http://127.0.0.1:10000/jwt-authn/me
  curl -s -i http://127.0.0.1:10000/jwt/me

  # identity: an API key
  curl -s -H 'x-api-key: demo-api-key-do-not-use-in-production' http://127.0.0.1:10000/apikey/x

  # an LLM call to an external provider: a plain prompt passes; a cloud key in it is a 403
  curl -s http://127.0.0.1:10000/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model": "gpt-4o", "messages": [{{"role": "user", "content": "Say hello"}}]}}'
  curl -s -i http://127.0.0.1:10000/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model": "gpt-4o", "messages": [{{"role": "user", "content": "my key: {aws_key}"}}]}}'

  # an MCP tool call by an agent (a JWT for the MCP resource, with its scopes, whose
  # subject is agent-support): a tool it is listed for passes; another one is answered
  # with a tool error, and the session goes on
  AGENT=$({token_for} agent-support \\
      --audience https://mcp.example.com/mcp --claim 'scope=tools:read tools:write')
  curl -s http://127.0.0.1:10000/mcp -H "authorization: Bearer $AGENT" \\
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
    -d '{{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {{"name": "search_tickets", "arguments": {{"q": "refund"}}}}}}'
  curl -s http://127.0.0.1:10000/mcp -H "authorization: Bearer $AGENT" \\
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
    -d '{{"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {{"name": "delete_pod", "arguments": {{"pod": "db-0"}}}}}}'

  # a rate-limited tenant: the decision names the tenant, Envoy counts it; tenant-a (free
  # tier) may make 3 requests a minute, so the 4th is a 429
  for i in 1 2 3 4; do
    curl -s -o /dev/null -w '%{{http_code}}\\n' -H 'x-tenant: tenant-a' http://127.0.0.1:10000/tenant/x
  done

Decision lines are printed below as JSON. Ctrl-C stops everything.
"""
# A format-valid AWS access key id that belongs to no one (the detector knows the format).
FAKE_AWS_KEY = "AKIA" + "Q7ZXW3RT5YU8IOPL"


def banner() -> str:
    """The curls, with the venv's `authz` as typed from the repository root."""
    authz = Path(sys.executable).parent / "authz"
    try:
        shown = str(authz.relative_to(ROOT))
    except ValueError:
        shown = str(authz)
    token_for = (
        f"{shown} token --key deploy/envoy/keys/demo-signing-key.pem --kid demo-2026 \\\n"
        "      --issuer https://idp.example.com --audience llm-gateway --subject"
    )
    return CURLS.format(authz=shown, token_for=token_for, aws_key=FAKE_AWS_KEY)


def wait_until(
    check: object, what: str, proc: subprocess.Popen[bytes], timeout: float = 120.0
) -> None:
    """Poll a callable until it returns True; give up at once if `proc` (the process being
    waited for) exits, e.g. on a policy file that does not compile. The bound is generous: a
    first start on a busy machine (imports, compiling the policies) can take tens of seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"run_demo: {what} exited with status {proc.returncode} (see above)")
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"run_demo: {what} did not become ready in {timeout:.0f}s")


def http_ok(url: str) -> bool:
    """True when GET url answers 200."""
    with urllib.request.urlopen(url, timeout=1) as resp:
        return resp.status == 200


def main() -> int:
    """Start the three processes, print how to try them, stop them on Ctrl-C."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen([sys.executable, str(HERE / "demo_upstream.py"), "--port", "8080"])
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "authz",
                    "serve",
                    "--config",
                    str(HERE / "policies" / "example.yaml"),
                ],
                cwd=ROOT,
            )
        )
        wait_until(lambda: http_ok("http://127.0.0.1:8080/"), "the demo upstream", procs[0])
        wait_until(lambda: serving("127.0.0.1:9191"), "authz", procs[1])
        procs.append(
            subprocess.Popen(
                [
                    str(ENVOY),
                    "-c",
                    str(HERE / "envoy.yaml"),
                    "--disable-hot-restart",
                    "-l",
                    "warning",
                ],
                cwd=ROOT,  # Envoy resolves the config's relative file names against it
            )
        )
        wait_until(lambda: http_ok("http://127.0.0.1:9901/ready"), "Envoy", procs[2])
        print(banner(), flush=True)
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("run_demo: a process exited; stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
