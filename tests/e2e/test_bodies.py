"""Bodies through a real Envoy and the example pack: a body Envoy may have cut is never
judged as if whole, and a body with no single meaning is refused."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest

from tests.support.paths import EXAMPLE_POLICY

LIMIT = 65536  # with_request_body.max_request_bytes in deploy/envoy/envoy.yaml


def send_chunked(port: int, path: str, parts: list[bytes]) -> tuple[int, bytes]:
    """POST with Transfer-Encoding: chunked, one chunk per part, pausing after each so that
    Envoy's buffer holds exactly what has been sent so far."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader("content-type", "application/json")
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        for part in parts:
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            time.sleep(0.3)
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def json_of_size(size: int) -> bytes:
    """A valid JSON document of exactly `size` bytes."""
    head = b'{"pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


@pytest.fixture
def stack(upstream: Any, envoy_factory: Any, authz_factory: Any) -> Any:
    """Envoy with the shipped config and the example policies."""
    authz = authz_factory(EXAMPLE_POLICY)
    return envoy_factory(authz.port, upstream.port), upstream


def test_a_chunked_body_cut_at_envoys_limit_is_truncated(stack: Any) -> None:
    envoy, upstream = stack
    # Envoy stops buffering at exactly LIMIT bytes and says x-envoy-auth-partial-body:
    # false; what it checked is valid JSON, the marker comes after. Judged as whole, it
    # would pass and the upstream would receive the marker.
    status, body = send_chunked(
        envoy.port, "/upload/doc", [json_of_size(LIMIT), b'  {"marker": "forbidden"} TOP-SECRET']
    )
    assert status == 413, body
    assert json.loads(body)["error"] == "body too large to inspect"
    # A whole chunked body below the limit is judged as usual.
    status, _ = send_chunked(envoy.port, "/upload/doc", [json_of_size(1000)])
    assert status == 200
    assert [r["path"] for r in upstream.requests()] == ["/upload/doc"]


def test_duplicate_keys_and_lone_surrogates_are_refused(stack: Any) -> None:
    envoy, upstream = stack
    # One upstream reads the first "marker", another the last: no single meaning.
    status, _ = send_chunked(
        envoy.port, "/upload/doc", [b'{"marker": "fine", "marker": "forbidden"}']
    )
    assert status == 400
    status, body = send_chunked(envoy.port, "/upload/doc", [b'{"marker": "\\ud800"}'])
    assert status == 400
    assert b"basic_string" not in body
    assert upstream.requests() == []
