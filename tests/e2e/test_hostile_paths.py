"""Path tricks through the shipped Envoy config (normalize_path, merge_slashes, escaped
slashes rejected, encoded dot-segments with parameters rejected): the path the policy judges
is the path the upstream receives."""

from __future__ import annotations

import http.client
from typing import Any

# (raw request target, expected status, path the upstream sees or None)
CASES = [
    ("/public/../team/x", 403, None),  # dot-segments resolved: judged as /team/x
    ("/public/./x", 200, "/public/x"),
    ("/public/%2e%2e/team/x", 403, None),  # encoded dots decoded, then resolved
    ("/public/%2E%2E/team/x", 403, None),
    ("/public%2fteam/x", 400, None),  # escaped slash: rejected by Envoy
    ("/public%2Fx", 400, None),
    ("/public%5cx", 400, None),  # escaped backslash: rejected too
    ("//team//x", 403, None),  # slashes merged: /team/x
    ("/PUBLIC/x", 403, None),  # prefixes are case-sensitive: no policy
    ("/public/x;jsessionid=1", 200, "/public/x;jsessionid=1"),
    ("/public/%c0%ae%c0%ae/team", 200, "/public/%c0%ae%c0%ae/team"),  # overlong UTF-8 stays
    ("/team/../public/y", 200, "/public/y"),
    # A dot-segment with parameters: Envoy resolves the plain form like `..`; an encoded
    # form it leaves alone would reach the public route while an upstream that strips
    # `;params` serves /team/x, so the shipped config refuses it before ext_authz.
    ("/public/..;/team/x", 403, None),  # judged as /team/x, like its decoded form
    ("/public/%2e%2e;/team/x", 400, None),
    ("/public/%2E%2E;jsessionid=1/team/x", 400, None),
    ("/public/.%2e;/team/x", 400, None),
    ("/public/..%3b/team/x", 400, None),
    ("/public/%2e%2e%3B/team/x", 400, None),
    ("/public/%2e;/x", 400, None),
    ("/public/.;/x", 200, "/public/x"),
    ("/team/..;/public/x", 200, "/public/x"),
    ("/team/%2e%2e;/public/x", 400, None),
]


def raw_get(port: int, target: str) -> int:
    """GET with the request target sent exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_path_tricks(stack: Any) -> None:
    envoy, upstream = stack
    seen: list[str] = []
    for target, status, reaches in CASES:
        assert (target, raw_get(envoy.port, target)) == (target, status)
        if reaches is not None:
            seen.append(reaches)
        assert [r["path"] for r in upstream.requests()] == seen, target
