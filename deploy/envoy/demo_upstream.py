"""Demo upstream: a tiny stdlib-only HTTP echo server.

Every method on every path answers ``200`` with a JSON body::

    {"method": "...", "path": "...", "headers": {"lower-case": "..."}, "body": "..."}

``body`` is the first 64 KiB of the request body, decoded as UTF-8 with replacement.
With ``--log FILE`` one JSON line ``{"method", "path"}`` is appended per request, which
lets tests prove whether a request ever got past Envoy.

Usage::

    python deploy/envoy/demo_upstream.py [--host 127.0.0.1] [--port 8080] [--log FILE]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

MAX_BODY = 64 * 1024


class EchoHandler(BaseHTTPRequestHandler):
    """Echo the request back as JSON, whatever the method."""

    protocol_version = "HTTP/1.1"
    server_version = "demo-upstream/1"
    log_file: ClassVar[Path | None] = None
    _log_lock: ClassVar[threading.Lock] = threading.Lock()

    def _read_body(self) -> bytes:
        """Read the request body (Content-Length or chunked); keep the first MAX_BODY bytes."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            kept = 0
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers (if any) end with an empty line.
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(size)
                self.rfile.readline(3)  # CRLF after each chunk
                if kept < MAX_BODY:
                    chunks.append(data[: MAX_BODY - kept])
                    kept += len(chunks[-1])
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length > 0 else b""
        return data[:MAX_BODY]

    def _record(self) -> None:
        """Append one line for this request to the --log file, if configured."""
        if self.log_file is None:
            return
        line = json.dumps({"method": self.command, "path": self.path}) + "\n"
        with self._log_lock, self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(line)

    def _echo(self) -> None:
        body = self._read_body()
        self._record()
        payload = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", errors="replace"),
        }
        out = json.dumps(payload).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    # BaseHTTPRequestHandler dispatches to do_<METHOD>; accept any method name.
    def __getattr__(self, name: str) -> object:
        if name.startswith("do_"):
            return self._echo
        raise AttributeError(name)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: no per-request access log on stderr."""


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until SIGTERM / SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--log", type=Path, default=None, help="append one line per request")
    args = parser.parse_args(argv)

    EchoHandler.log_file = args.log
    server = ThreadingHTTPServer((args.host, args.port), EchoHandler)
    server.daemon_threads = True

    def _stop(signum: int, _frame: object) -> None:
        # shutdown() blocks until serve_forever returns, so call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"demo upstream listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
