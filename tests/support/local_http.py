"""A small HTTP endpoint in the test process, whose behaviour a test can change: the base of
the JWKS and introspection endpoints the identity tests run against."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a hanging answer is what the tests make happen


class LocalHttpServer:
    """Answers GET and POST on 127.0.0.1 in its own threads. `mode` is "ok" (`answer()`
    decides), "fail" (HTTP 500) or "hang" (answers after `release()`). Every request is
    counted, and noted by `note()`, before the mode applies, so a test can wait for it."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests = 0
        self._seen = threading.Condition()
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._serve(self)

            def do_POST(self) -> None:
                server._serve(self)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.port: int = self.httpd.server_address[1]

    def note(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Remember what a request asked (under the lock `wait_requests` waits on)."""

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        """The status and the JSON document for a request in mode "ok"."""
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length", "0")))
        with self._seen:
            self.note(handler, body)
            self.requests += 1
            self._seen.notify_all()
        if self.mode == "hang":
            self._release.wait(30)
        if self.mode == "fail":
            handler.send_error(500)
            return
        status, document = self.answer(handler, body)
        if status != 200:
            handler.send_error(status)
            return
        data = json.dumps(document).encode()
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def wait_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until `count` requests came (woken by each); False if they did not."""
        with self._seen:
            return self._seen.wait_for(lambda: self.requests >= count, timeout)

    def release(self) -> None:
        """Let hanging requests answer."""
        self._release.set()

    def stop(self) -> None:
        """Release hanging requests and stop answering (the port then refuses connections)."""
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
