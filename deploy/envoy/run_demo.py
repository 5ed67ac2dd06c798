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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENVOY = Path(sys.executable).parent / "envoy"

CURLS = """
authz demo is up: Envoy on http://127.0.0.1:10000 (admin :9901), authz on :9191.

  # allow: the public policy; the upstream echoes the x-authz-policy header the policy set
  curl -s http://127.0.0.1:10000/public/hello

  # allow for the ml team, deny (403, JSON body) for anyone else
  curl -s -H 'x-team: ml' http://127.0.0.1:10000/team/report
  curl -s -i -H 'x-team: sales' http://127.0.0.1:10000/team/report

  # body-based deny (422)
  curl -s -i -X POST --data 'draft TOP-SECRET plan' http://127.0.0.1:10000/upload/doc

  # identity: a demo JWT (valid 1 hour) verified by authz, then by Envoy's jwt_authn;
  # without it, 401 with WWW-Authenticate naming the reason
  curl -s -H 'authorization: Bearer {token}' http://127.0.0.1:10000/jwt/me
  curl -s -H 'authorization: Bearer {token}' http://127.0.0.1:10000/jwt-authn/me
  curl -s -i http://127.0.0.1:10000/jwt/me

  # identity: an API key
  curl -s -H 'x-api-key: demo-api-key-do-not-use-in-production' http://127.0.0.1:10000/apikey/x

Decision lines are printed below as JSON. Ctrl-C stops everything.
"""


def demo_token() -> str:
    """A JWT from the demo issuer, signed with the shipped demo key."""
    import jwt

    now = int(time.time())
    claims = {
        "iss": "https://idp.example.com",
        "aud": "llm-gateway",
        "sub": "demo-user",
        "groups": ["ml"],
        "iat": now,
        "exp": now + 3600,
    }
    key = (HERE / "keys" / "demo-signing-key.pem").read_bytes()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "demo-2026"})


def wait_until(check: object, what: str, timeout: float = 20.0) -> None:
    """Poll a callable until it returns True."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
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


def authz_serving() -> bool:
    """True when the authz gRPC health check says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel("127.0.0.1:9191") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


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
        wait_until(lambda: http_ok("http://127.0.0.1:8080/"), "the demo upstream")
        wait_until(authz_serving, "authz")
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
        wait_until(lambda: http_ok("http://127.0.0.1:9901/ready"), "Envoy")
        print(CURLS.format(token=demo_token()), flush=True)
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
