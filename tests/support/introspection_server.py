"""A real RFC 7662 introspection endpoint in the test process, whose answers a test sets."""

from __future__ import annotations

import base64
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.local_http import LocalHttpServer

CLIENT_ID = "authz"
CLIENT_SECRET = "s3cret:with/odd+chars"


class IntrospectionServer(LocalHttpServer):
    """POST /introspect: `tokens[token]` is the answer for a known token (`{"active":
    false}` otherwise). `mode`: "ok", "fail" (HTTP 500) or "hang" (answers after
    `release()`). Only the configured client, by HTTP Basic, is answered (else 401)."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.hits: list[str] = []  # tokens asked about, in order
        self.auth: list[str] = []  # Authorization headers received
        super().__init__()

    def note(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """The token asked about and the client's credentials."""
        self.hits.append(_token(body))
        self.auth.append(handler.headers.get("authorization", ""))

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        """The token's answer, to the configured client only."""
        if handler.headers.get("authorization") != self.basic():
            return 401, None
        return 200, self.tokens.get(_token(body), {"active": False})

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
        return self.wait_requests(count, timeout)


def _token(form: bytes) -> str:
    """The `token` field of an introspection request's form."""
    return urllib.parse.parse_qs(form.decode()).get("token", [""])[0]
