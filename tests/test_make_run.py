"""`make run`'s script starts upstream, authz and Envoy, prints curls, and stops all three."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

PORTS = (10000, 9901, 9191, 9192, 8080)


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_run_demo_serves_and_stops_everything() -> None:
    assert not any(port_open(p) for p in PORTS), "demo ports are busy before the test"
    proc = subprocess.Popen(
        [sys.executable, "deploy/envoy/run_demo.py"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        banner = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            banner.append(line)
            if "Ctrl-C stops everything" in line or not line:
                break
        text = "".join(banner)
        assert "curl -s http://127.0.0.1:10000/public/hello" in text, text
        with urllib.request.urlopen("http://127.0.0.1:10000/public/hello", timeout=5) as resp:
            assert resp.status == 200
            assert b'"x-authz-policy": "public"' in resp.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(port_open(p) for p in PORTS) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(port_open(p) for p in PORTS)
    assert proc.returncode == 0
