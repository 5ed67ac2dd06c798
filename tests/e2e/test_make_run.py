"""`make run`'s script starts upstream, authz and Envoy, prints curls, and stops all three."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.support.health import wait_until
from tests.support.paths import REPO_ROOT

PORTS = (10000, 9901, 9191, 9192, 8080)


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# What the printed examples must show, in order of the banner.
EXPECTED = (
    '"x-authz-policy": "public"',
    '"x-authz-team": "ml"',
    "HTTP/1.1 403",
    '{"error": "access denied", "decision_id": ',
    '"rule": "ml-team",\n      "result": "false"',  # --explain
    "HTTP/1.1 422",
    '"x-authz-subject": "demo-user"',
    "HTTP/1.1 401",
    'www-authenticate: Bearer realm="authz", error_description="missing_credentials"',
    '"x-authz-subject": "demo-ci-bot"',
    '"path": "/v1/chat/completions"',
    '"error": "credentials must not be sent to an external model"',
    '"x-authz-agent": "agent-support"',
    "this agent may not call that tool",
    "200\n200\n200\n429\n",
)


def run_printed_examples(banner: str) -> str:
    """Run every example the banner prints, as one shell script from the repository root
    (with the venv's bin first on PATH, as after `make install`); return what they print."""
    body = banner.split("Run these from the repository root.\n", 1)[1]
    body = body.split("Decision lines are printed below", 1)[0]
    script = "\n".join(line[2:] if line.startswith("  ") else line for line in body.splitlines())
    ran = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,  # a dozen CLI starts on a loaded machine
        cwd=REPO_ROOT,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_run_demo_serves_and_stops_everything() -> None:
    # The demo's ports are fixed; another run on this machine may hold them for a while.
    wait_until(
        lambda: None if not any(port_open(p) for p in PORTS) else "a demo port is taken",
        "demo ports are busy before the test",
        120,
    )
    proc = subprocess.Popen(
        [sys.executable, "deploy/envoy/run_demo.py"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        banner = []
        deadline = time.monotonic() + 600  # run_demo gives up on a process after 120 s
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            banner.append(line)
            if "Ctrl-C stops everything" in line or not line:
                break
        text = "".join(banner)
        assert "curl -s http://127.0.0.1:10000/public/hello" in text, text
        with urllib.request.urlopen("http://127.0.0.1:10000/public/hello", timeout=60) as resp:
            assert resp.status == 200
            assert b'"x-authz-policy": "public"' in resp.read()
        # nothing deprecated or warned about on the way up (Envoy logs at warning level)
        assert "[warning]" not in text and "Warning" not in text, text
        ran = run_printed_examples(text)
        for expected in EXPECTED:
            assert expected in ran, f"{expected!r} not in the examples' output:\n{ran}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while any(port_open(p) for p in PORTS) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(port_open(p) for p in PORTS)
    assert proc.returncode == 0
