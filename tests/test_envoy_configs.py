"""The shipped Envoy configs validate, and the Envoy + upstream harness behaves.

These tests need only the Envoy binary and the demo upstream, not the authz service.
"""

from __future__ import annotations

import http.client
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.procs import (
    DEPLOY_ENVOY_DIR,
    ENVOY_CONFIG,
    EXT_AUTHZ_FILTER,
    EnvoyFactory,
    UpstreamHandle,
    envoy_binary,
    ext_authz_filter,
    find_cluster,
    free_port,
    http_filters,
    remove_http_filter,
    render_envoy_config,
)


def _envoy_config_files() -> list[Path]:
    """Every YAML under deploy/envoy/ that is an Envoy bootstrap (has static_resources)."""
    found: list[Path] = []
    for path in sorted(DEPLOY_ENVOY_DIR.rglob("*.y*ml")):
        if "policies" in path.relative_to(DEPLOY_ENVOY_DIR).parts:
            continue
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            found.append(path)  # let Envoy report the parse error loudly
            continue
        if isinstance(doc, dict) and "static_resources" in doc:
            found.append(path)
    return found


def _validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config), "-l", "warning"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send one request with ``path`` exactly as given (no client-side normalization)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_shipped_envoy_config_exists() -> None:
    assert ENVOY_CONFIG in _envoy_config_files()


@pytest.mark.parametrize(
    "config",
    _envoy_config_files(),
    ids=lambda p: str(p.relative_to(DEPLOY_ENVOY_DIR)),
)
def test_envoy_config_validates(config: Path, envoy_bin: Path) -> None:
    result = _validate(config)
    assert result.returncode == 0, f"{config}:\n{result.stdout}\n{result.stderr}"


def test_rendered_config_rewrites_ports_and_validates(tmp_path: Path, envoy_bin: Path) -> None:
    def mutate(cfg: dict[str, Any]) -> None:
        ext_authz_filter(cfg)["grpc_service"]["timeout"] = "0.25s"

    rendered = render_envoy_config(
        tmp_path,
        listener_port=20001,
        admin_port=20002,
        authz_port=20003,
        upstream_port=20004,
        mutate=mutate,
    )
    cfg = yaml.safe_load(rendered.read_text(encoding="utf-8"))

    def endpoint_ports(name: str) -> list[int]:
        cluster = find_cluster(cfg, name)
        return [
            lb["endpoint"]["address"]["socket_address"]["port_value"]
            for group in cluster["load_assignment"]["endpoints"]
            for lb in group["lb_endpoints"]
        ]

    assert cfg["admin"]["address"]["socket_address"]["port_value"] == 20002
    (listener,) = cfg["static_resources"]["listeners"]
    assert listener["address"]["socket_address"]["port_value"] == 20001
    assert endpoint_ports("authz") == [20003]
    assert endpoint_ports("upstream") == [20004]
    assert ext_authz_filter(cfg)["grpc_service"]["timeout"] == "0.25s"
    # The shipped file itself is untouched.
    shipped = yaml.safe_load(ENVOY_CONFIG.read_text(encoding="utf-8"))
    assert ext_authz_filter(shipped)["grpc_service"]["timeout"] == "1s"

    result = _validate(rendered)
    assert result.returncode == 0, f"{rendered}:\n{result.stdout}\n{result.stderr}"


def test_shipped_config_fails_closed() -> None:
    """Guard the security-relevant knobs of the shipped config against silent edits."""
    cfg = yaml.safe_load(ENVOY_CONFIG.read_text(encoding="utf-8"))
    ext_authz = ext_authz_filter(cfg)
    assert ext_authz["failure_mode_allow"] is False
    assert "status_on_error" not in ext_authz or ext_authz["status_on_error"]["code"] == 403
    assert [f["name"] for f in http_filters(cfg)] == [
        "envoy.filters.http.jwt_authn",
        EXT_AUTHZ_FILTER,
        "envoy.filters.http.router",
    ]
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    hcm = hcm["typed_config"]
    assert hcm["normalize_path"] is True
    assert hcm["merge_slashes"] is True
    assert hcm["path_with_escaped_slashes_action"] in {"REJECT_REQUEST", "UNESCAPE_AND_REDIRECT"}


def test_harness_without_authz(upstream: UpstreamHandle, envoy_factory: EnvoyFactory) -> None:
    envoy = envoy_factory(
        free_port(), upstream.port, mutate=lambda cfg: remove_http_filter(cfg, EXT_AUTHZ_FILTER)
    )

    status, body = _request(envoy.port, "GET", "/anything?x=1", headers={"X-Demo": "yes"})
    assert status == 200, body
    echo = json.loads(body)
    assert echo["method"] == "GET"
    assert echo["path"] == "/anything?x=1"
    assert echo["headers"]["x-demo"] == "yes"
    assert "x-request-id" in echo["headers"]  # added by Envoy: it really went through it

    status, body = _request(envoy.port, "POST", "/upload/f", body=b"payload")
    assert status == 200, body
    assert json.loads(body)["body"] == "payload"

    # Path normalization happens before routing (and before ext_authz would run).
    status, body = _request(envoy.port, "GET", "/public//a/../team/./x")
    assert status == 200, body
    assert json.loads(body)["path"] == "/public/team/x"

    # Encoded slashes are refused outright and never reach the upstream.
    seen_before = len(upstream.requests())
    status, _ = _request(envoy.port, "GET", "/public/..%2Fteam/x")
    assert status == 400
    assert len(upstream.requests()) == seen_before

    assert [r["path"] for r in upstream.requests()] == [
        "/anything?x=1",
        "/upload/f",
        "/public/team/x",
    ]


@pytest.mark.parametrize("path", ["/public/x", "/team/x", "/upload/x", "/anything"])
def test_unreachable_authz_denies(
    path: str, upstream: UpstreamHandle, envoy_factory: EnvoyFactory
) -> None:
    dead_port = free_port()  # nothing listens here
    envoy = envoy_factory(dead_port, upstream.port)

    status, body = _request(envoy.port, "GET", path)
    assert status == 403, body
    status, body = _request(envoy.port, "POST", path, body=b"x" * 1024)
    assert status == 403, body

    assert upstream.requests() == []
    assert (envoy.stat("http.ingress.ext_authz.error") or 0) >= 2, envoy.log_text()
