"""A real HTTP JWKS endpoint in the test process, whose behaviour a test can change."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JwksServer:
    """Serves `document` at /jwks.json; `mode` is "ok", "fail" (500) or "hang"."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.mode = "ok"
        self.hits = 0
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                if server.mode == "hang":
                    server._release.wait(30)
                if server.mode == "fail":
                    self.send_error(500)
                    return
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def uri(self) -> str:
        """The JWKS URL."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"

    def wait_hits(self, count: int, timeout: float = 5.0) -> None:
        """Wait until the endpoint has been asked `count` times."""
        end = time.monotonic() + timeout
        while self.hits < count and time.monotonic() < end:
            time.sleep(0.01)

    def release(self) -> None:
        """Let hanging requests answer."""
        self._release.set()

    def close(self) -> None:
        """Release hanging requests and stop."""
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
