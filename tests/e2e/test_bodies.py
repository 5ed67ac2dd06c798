"""Bodies through a real Envoy and the example pack: a body Envoy may have cut is never
judged as if whole, and a body with no single meaning is refused."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from tests.support.health import Probe, wait_until

LIMIT = 65536  # with_request_body.max_request_bytes in deploy/envoy/envoy.yaml


def send_chunked(envoy: Any, path: str, parts: list[bytes]) -> tuple[int, bytes]:
    """POST with Transfer-Encoding: chunked, one chunk per part. Before each next part, wait
    until Envoy has read every byte sent so far (its downstream rx counter), so that Envoy's
    buffer holds exactly what has been sent when the next part arrives."""
    data = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        "transfer-encoding: chunked\r\n\r\n"
    ).encode()
    sent = received(envoy)
    with socket.create_connection(("127.0.0.1", envoy.port), timeout=60) as sock:
        for index, part in enumerate(parts):
            if index:
                wait_until(has_read(envoy, sent), "Envoy did not read a part", 120, proc=envoy.proc)
            data += b"%x\r\n%s\r\n" % (len(part), part)
            sock.sendall(data)
            sent += len(data)
            data = b""
        sock.sendall(b"0\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def received(envoy: Any) -> int:
    """The bytes Envoy has read from downstream connections."""
    return envoy.stat("http.ingress.downstream_cx_rx_bytes_total") or 0


def has_read(envoy: Any, total: int) -> Probe:
    """Probe: Envoy has read `total` bytes from downstream connections."""

    def probe() -> str | None:
        got = received(envoy)
        return None if got >= total else f"{got} of {total} bytes"

    return probe


def json_of_size(size: int) -> bytes:
    """A valid JSON document of exactly `size` bytes."""
    head = b'{"pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_a_chunked_body_cut_at_envoys_limit_is_truncated(stack: Any) -> None:
    envoy, upstream = stack
    # Envoy stops buffering at exactly LIMIT bytes and says x-envoy-auth-partial-body:
    # false; what it checked is valid JSON, the marker comes after. Judged as whole, it
    # would pass and the upstream would receive the marker.
    status, body = send_chunked(
        envoy, "/upload/doc", [json_of_size(LIMIT), b'  {"marker": "forbidden"} TOP-SECRET']
    )
    assert status == 413, body
    assert json.loads(body)["error"] == "body too large to inspect"
    # A whole chunked body below the limit is judged as usual.
    status, _ = send_chunked(envoy, "/upload/doc", [json_of_size(1000)])
    assert status == 200
    assert [r["path"] for r in upstream.requests()] == ["/upload/doc"]


def test_duplicate_keys_and_lone_surrogates_are_refused(stack: Any) -> None:
    envoy, upstream = stack
    # One upstream reads the first "marker", another the last: no single meaning.
    status, _ = send_chunked(envoy, "/upload/doc", [b'{"marker": "fine", "marker": "forbidden"}'])
    assert status == 400
    status, body = send_chunked(envoy, "/upload/doc", [b'{"marker": "\\ud800"}'])
    assert status == 400
    assert b"basic_string" not in body
    assert upstream.requests() == []
