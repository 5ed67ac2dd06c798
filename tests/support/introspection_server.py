"""A real RFC 7662 introspection endpoint in the test process, whose answers a test sets."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLIENT_ID = "authz"
CLIENT_SECRET = "s3cret:with/odd+chars"


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a hanging answer is what the tests make happen


class IntrospectionServer:
    """POST /introspect: `tokens[token]` is the answer for a known token (`{"active":
    false}` otherwise). `mode`: "ok", "fail" (HTTP 500) or "hang" (answers after
    `release()`). Only the configured client, by HTTP Basic, is answered (else 401)."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.mode = "ok"
        self.hits: list[str] = []  # tokens asked about, in order
        self.auth: list[str] = []  # Authorization headers received
        self._seen = threading.Condition()
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                token = form.get("token", [""])[0]
                with server._seen:
                    server.hits.append(token)
                    server.auth.append(self.headers.get("authorization", ""))
                    server._seen.notify_all()
                if server.mode == "hang":
                    server._release.wait(30)
                if server.mode == "fail":
                    self.send_error(500)
                    return
                if self.headers.get("authorization") != server.basic():
                    self.send_error(401)
                    return
                answer = server.tokens.get(token, {"active": False})
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.httpd.server_address[1]

    @staticmethod
    def basic() -> str:
        """The Authorization header RFC 6749 2.3.1 asks of the client."""
        pair = f"{urllib.parse.quote_plus(CLIENT_ID)}:{urllib.parse.quote_plus(CLIENT_SECRET)}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    @property
    def url(self) -> str:
        """The introspection endpoint."""
        return f"http://127.0.0.1:{self.port}/introspect"

    def wait_hits(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until the endpoint has been asked `count` times (woken by each request)."""
        with self._seen:
            return self._seen.wait_for(lambda: len(self.hits) >= count, timeout)

    def release(self) -> None:
        """Let hanging requests answer."""
        self._release.set()

    def stop(self) -> None:
        """Stop answering (the port then refuses connections)."""
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
