"""A real HTTP JWKS endpoint in the test process, whose behaviour a test can change."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.local_http import LocalHttpServer


class JwksServer(LocalHttpServer):
    """Serves `document` at /jwks.json; `mode` is "ok", "fail" (500) or "hang"."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        super().__init__()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        """The key set, whatever the path."""
        return 200, self.document

    @property
    def hits(self) -> int:
        """How many times the keys were asked for."""
        return self.requests

    @property
    def uri(self) -> str:
        """The JWKS URL."""
        return f"http://127.0.0.1:{self.port}/jwks.json"
