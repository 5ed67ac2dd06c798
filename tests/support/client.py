"""What the tests send as a client: one HTTP request, one scrape of /metrics."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any


def http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; returns status, lower-cased headers and body (errors included)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def scrape(authz: Any) -> dict[str, float]:
    """The service's /metrics (``authz.admin_url``) as {sample line without value: value}."""
    with urllib.request.urlopen(authz.admin_url("/metrics"), timeout=30) as resp:
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
