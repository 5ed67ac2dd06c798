"""The admin HTTP port: /metrics (Prometheus), /healthz (liveness), /readyz (policies
loaded and serving)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from authz.observability.metrics import Metrics


class AdminServer:
    """Serves the admin endpoints on a background thread."""

    def __init__(
        self, host: str, port: int, metrics: Metrics, readiness: Callable[[], dict[str, Any]]
    ) -> None:
        admin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    admin._send(self, 200, metrics.exposition(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    admin._send(self, 200, b'{"status": "ok"}\n', "application/json")
                elif path == "/readyz":
                    state = readiness()
                    status = 200 if state.get("ready") else 503
                    body = (json.dumps(state) + "\n").encode()
                    admin._send(self, status, body, "application/json")
                else:
                    admin._send(self, 404, b'{"error": "not found"}\n', "application/json")

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="admin", daemon=True)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        handler.send_response(status)
        handler.send_header("content-type", kind)
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
