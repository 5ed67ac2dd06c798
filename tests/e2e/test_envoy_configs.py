"""The shipped Envoy configs validate, and the Envoy + upstream harness behaves.

These tests need only the Envoy binary and the demo upstream, not the authz service. The
Docker Compose setup (deploy/compose.yaml, deploy/Dockerfile, deploy/envoy/envoy-compose.yaml)
cannot be run here; its tests check it statically and validate its Envoy config.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.envoy import (
    EXT_AUTHZ_FILTER,
    EXT_PROC_FILTER,
    OTEL_CLUSTER,
    EnvoyFactory,
    envoy_binary,
    ext_authz_filter,
    find_cluster,
    http_filters,
    remove_http_filter,
    render_envoy_config,
    tracing_config,
)
from tests.support.paths import DEPLOY_ENVOY_DIR, ENVOY_CONFIG, REPO_ROOT
from tests.support.ports import free_port
from tests.support.upstream import UpstreamHandle

DEPLOY_DIR = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "compose.yaml"
DOCKERFILE = DEPLOY_DIR / "Dockerfile"
ENVOY_COMPOSE_CONFIG = DEPLOY_ENVOY_DIR / "envoy-compose.yaml"
OTEL_TRACER = "envoy.tracers.opentelemetry"


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


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def _envoy_mounts() -> dict[str, Path]:
    """The compose ``envoy`` service's bind mounts: ``{container path: host path}``."""
    mounts: dict[str, Path] = {}
    for volume in _compose()["services"]["envoy"].get("volumes", []):
        host, container, *_ = volume.split(":")
        mounts[container.rstrip("/")] = (DEPLOY_DIR / host).resolve()
    return mounts


def _map_container_paths(node: Any, mounts: dict[str, Path]) -> bool:
    """Rewrite, in place, every ``filename:`` under a mount to the host file it mounts.

    Returns whether anything was rewritten.
    """
    changed = False
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "filename" and isinstance(value, str) and value.startswith("/"):
                for container, host in mounts.items():
                    if value.startswith(container + "/"):
                        node[key] = str(host / value.removeprefix(container + "/"))
                        changed = True
            else:
                changed |= _map_container_paths(value, mounts)
    elif isinstance(node, list):
        for item in node:
            changed |= _map_container_paths(item, mounts)
    return changed


def _host_view(config: Path, tmp_path: Path) -> Path:
    """``config`` as Envoy can validate it on this host.

    Configs for the compose Envoy read files from its bind mounts (the JWKS under
    /etc/envoy/keys), which Envoy opens even in validate mode: those paths are mapped back
    to the repository files that compose mounts there, in a copy under ``tmp_path``. Any
    other config is validated in place, exactly as shipped.
    """
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not _map_container_paths(doc, _envoy_mounts()):
        return config
    out = tmp_path / config.name
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


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
    assert ENVOY_COMPOSE_CONFIG in _envoy_config_files()


@pytest.mark.parametrize(
    "config",
    _envoy_config_files(),
    ids=lambda p: str(p.relative_to(DEPLOY_ENVOY_DIR)),
)
def test_envoy_config_validates(config: Path, envoy_bin: Path, tmp_path: Path) -> None:
    # envoy-compose.yaml's clusters name compose services (authz, upstream, jaeger) that do
    # not resolve here; DNS cluster types validate without resolving (STATIC would not).
    result = _validate(_host_view(config, tmp_path))
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
        otel_port=20005,
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
    assert endpoint_ports(OTEL_CLUSTER) == [20005]
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
        EXT_PROC_FILTER,
        "envoy.filters.http.rbac",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.router",
    ]
    # The response path fails closed too, with the same status, and learns the policy that
    # allowed the request from ext_authz's metadata.
    ext_proc = next(f for f in http_filters(cfg) if f["name"] == EXT_PROC_FILTER)["typed_config"]
    assert ext_proc["failure_mode_allow"] is False
    assert ext_proc["status_on_error"]["code"] == 403
    forwarded = ext_proc["metadata_options"]["forwarding_namespaces"]["untyped"]
    assert EXT_AUTHZ_FILTER in forwarded
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    hcm = hcm["typed_config"]
    assert hcm["normalize_path"] is True
    assert hcm["merge_slashes"] is True
    assert hcm["path_with_escaped_slashes_action"] in {"REJECT_REQUEST", "UNESCAPE_AND_REDIRECT"}


def _endpoints(config: dict[str, Any], cluster: str) -> list[tuple[str, int]]:
    return [
        (
            lb["endpoint"]["address"]["socket_address"]["address"],
            lb["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for group in find_cluster(config, cluster)["load_assignment"]["endpoints"]
        for lb in group["lb_endpoints"]
    ]


def test_rendered_config_moves_collector_off_4317_by_default(tmp_path: Path) -> None:
    """Without an ``otel_port``, test Envoys export spans to a dead port, never to a
    developer's Jaeger on 4317 and never to one of the other ports."""
    ports = {"listener_port": 20001, "admin_port": 20002, "authz_port": 20003}
    rendered = render_envoy_config(tmp_path, upstream_port=20004, **ports)
    cfg = yaml.safe_load(rendered.read_text(encoding="utf-8"))
    ((host, port),) = _endpoints(cfg, OTEL_CLUSTER)
    assert host == "127.0.0.1"
    assert port not in {4317, 20001, 20002, 20003, 20004}
    # Tracing itself stays on: the harness Envoy behaves like the shipped one.
    assert tracing_config(cfg)["provider"]["name"] == OTEL_TRACER


def test_shipped_config_traces_to_otel_cluster() -> None:
    """Guard the tracing setup that authz's trace propagation relies on."""
    cfg = yaml.safe_load(ENVOY_CONFIG.read_text(encoding="utf-8"))
    tracing = tracing_config(cfg)
    assert tracing["random_sampling"]["value"] == 100
    provider = tracing["provider"]
    assert provider["name"] == OTEL_TRACER
    typed = provider["typed_config"]
    assert typed["@type"] == "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
    assert typed["grpc_service"]["envoy_grpc"]["cluster_name"] == OTEL_CLUSTER
    assert typed["service_name"] == "envoy"
    # The ext_authz call goes through envoy_grpc (Envoy's own gRPC client), which is what
    # carries the trace context into the Check call's metadata.
    assert ext_authz_filter(cfg)["grpc_service"]["envoy_grpc"]["cluster_name"] == "authz"

    otel = find_cluster(cfg, OTEL_CLUSTER)
    options = otel["typed_extension_protocol_options"]
    http_options = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in http_options["explicit_http_config"]  # OTLP is gRPC
    assert _endpoints(cfg, OTEL_CLUSTER) == [("127.0.0.1", 4317)]


# --------------------------------------------------------------------------- compose


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Short-syntax ``ports`` -> ``{container port: (host ip or "", host port)}``."""
    out: dict[int, tuple[str, int]] = {}
    for entry in service.get("ports", []):
        *host, container = str(entry).split(":")
        host_ip = host[0] if len(host) == 2 else ""
        host_port = int(host[-1]) if host else int(container)
        out[int(container)] = (host_ip, host_port)
    return out


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _dockerfile_cmd() -> list[str]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, flags=re.MULTILINE)
    return yaml.safe_load(cmd)  # a JSON array is a YAML flow sequence


def test_compose_file_services_ports_and_tracing_env() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"jaeger", "authz", "upstream", "envoy"}

    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert str(jaeger["environment"]["COLLECTOR_OTLP_ENABLED"]).lower() == "true"
    assert _published(jaeger)[16686] == ("", 16686)
    assert _published(jaeger)[4317] == ("", 4317)

    authz = services["authz"]
    assert (DEPLOY_DIR / authz["build"]["context"]).resolve() == REPO_ROOT
    assert (REPO_ROOT / authz["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert authz["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert authz["environment"]["OTEL_SERVICE_NAME"] == "authz"
    assert "ports" not in authz  # reached by Envoy over the compose network only

    upstream = services["upstream"]
    assert upstream["image"] == "python:3.11-slim"
    argv = [str(a) for a in upstream["command"]]
    assert (_flag(argv, "--host"), _flag(argv, "--port")) == ("0.0.0.0", "8080")
    mounts = {
        v.split(":")[1]: (DEPLOY_DIR / v.split(":")[0]).resolve() for v in upstream["volumes"]
    }
    assert mounts[argv[1]] == DEPLOY_ENVOY_DIR / "demo_upstream.py"
    assert "ports" not in upstream  # only reachable through Envoy

    envoy = services["envoy"]
    assert envoy["image"] == "envoyproxy/envoy:v1.40-latest"
    assert _published(envoy)[10000] == ("", 10000)
    assert _published(envoy)[9901] == ("127.0.0.1", 9901)  # admin: host loopback only
    config_in_container = _flag([str(a) for a in envoy["command"]], "-c")
    assert _envoy_mounts()[config_in_container] == ENVOY_COMPOSE_CONFIG
    for host_path in _envoy_mounts().values():
        assert host_path.exists(), host_path
    assert envoy["depends_on"]["authz"]["condition"] == "service_healthy"


def test_dockerfile_builds_like_make_install() -> None:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    assert re.search(r"^FROM python:3\.11-slim$", text, flags=re.MULTILINE)
    # The stubs must exist before the non-editable install copies the package.
    generate, install = text.index("python protos/generate.py"), text.index("pip install .")
    assert generate < install
    assert text.index("grpcio-tools") < generate
    assert _dockerfile_cmd() == [
        "authz",
        "serve",
        "--config",
        "/app/deploy/envoy/policies/example.yaml",
        "--listen",
        "0.0.0.0:9191",
        "--admin-listen",
        "0.0.0.0:9192",
    ]
    # ...and the policy file the image serves by default is in the repository.
    assert (REPO_ROOT / "deploy/envoy/policies/example.yaml").is_file()


def test_compose_envoy_config_matches_compose_services() -> None:
    """envoy-compose.yaml points at the compose services on the ports they listen on."""
    cfg = yaml.safe_load(ENVOY_COMPOSE_CONFIG.read_text(encoding="utf-8"))
    services = _compose()["services"]
    authz_listen = _flag(_dockerfile_cmd(), "--listen")
    upstream_port = int(_flag([str(a) for a in services["upstream"]["command"]], "--port"))
    expected = {
        "authz": ("authz", int(authz_listen.rpartition(":")[2])),
        "upstream": ("upstream", upstream_port),
        OTEL_CLUSTER: ("jaeger", 4317),
    }
    for cluster, (host, port) in expected.items():
        assert host in services
        assert _endpoints(cfg, cluster) == [(host, port)], cluster
        # Hostnames validate and resolve only with a DNS cluster type.
        assert find_cluster(cfg, cluster)["type"] in {"STRICT_DNS", "LOGICAL_DNS"}, cluster
    assert cfg["admin"]["address"]["socket_address"]["address"] == "0.0.0.0"
    (listener,) = cfg["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 10000}
    published = _published(services["envoy"])
    assert listener["address"]["socket_address"]["port_value"] in published
    assert cfg["admin"]["address"]["socket_address"]["port_value"] in published


def test_compose_envoy_config_is_envoy_yaml_with_container_addresses() -> None:
    """Apart from addresses, cluster DNS settings and the mounted JWKS path, the compose
    config is the shipped one: routes, filters, ext_authz and tracing cannot drift."""
    shipped = yaml.safe_load(ENVOY_CONFIG.read_text(encoding="utf-8"))
    compose = yaml.safe_load(ENVOY_COMPOSE_CONFIG.read_text(encoding="utf-8"))
    undone = copy.deepcopy(compose)

    undone["admin"]["address"]["socket_address"]["address"] = "127.0.0.1"
    undone["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] = "127.0.0.1"
    for cluster in undone["static_resources"]["clusters"]:
        assert cluster.pop("dns_lookup_family", None) in {None, "V4_ONLY"}
        cluster["type"] = "STATIC"
        for group in cluster["load_assignment"]["endpoints"]:
            for lb in group["lb_endpoints"]:
                lb["endpoint"]["address"]["socket_address"]["address"] = "127.0.0.1"
    jwt_authn = http_filters(undone)[0]["typed_config"]
    jwks = jwt_authn["providers"]["demo"]["local_jwks"]
    assert jwks["filename"] == "/etc/envoy/keys/jwks.json"
    jwks["filename"] = "deploy/envoy/keys/jwks.json"

    assert undone == shipped


def test_harness_without_authz(upstream: UpstreamHandle, envoy_factory: EnvoyFactory) -> None:
    def without_authz(cfg: dict[str, Any]) -> None:
        remove_http_filter(cfg, EXT_AUTHZ_FILTER)
        remove_http_filter(cfg, EXT_PROC_FILTER)

    envoy = envoy_factory(free_port(), upstream.port, mutate=without_authz)

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


GLOBAL_RATELIMIT_CONFIG = DEPLOY_ENVOY_DIR / "envoy-global-ratelimit.yaml"
RATELIMIT_SERVICE_CONFIG = DEPLOY_DIR / "ratelimit" / "config.yaml"


def _route_config(cfg: dict[str, Any], prefix: str, filter_name: str) -> dict[str, Any]:
    (listener,) = cfg["static_resources"]["listeners"]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    route = next(r for r in routes if r["match"].get("prefix") == prefix)
    return route["typed_per_filter_config"][filter_name]


def test_global_token_budgets_validate_and_match_the_local_ones(envoy_bin: Path) -> None:
    """The many-Envoys variant of the token budgets: it validates, fails closed when the
    rate limit service is away, charges the same cost from the same metadata behind the
    same cost guard, and the service's limits are envoy.yaml's local budgets."""
    assert GLOBAL_RATELIMIT_CONFIG in _envoy_config_files()
    result = _validate(GLOBAL_RATELIMIT_CONFIG)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    shipped = yaml.safe_load(ENVOY_CONFIG.read_text(encoding="utf-8"))
    global_ = yaml.safe_load(GLOBAL_RATELIMIT_CONFIG.read_text(encoding="utf-8"))
    ratelimit = next(f for f in http_filters(global_) if f["name"].endswith(".ratelimit"))
    assert ratelimit["typed_config"]["failure_mode_deny"] is True
    names = [f["name"] for f in http_filters(global_)]
    assert names.index("envoy.filters.http.rbac") < names.index("envoy.filters.http.ratelimit")
    service = yaml.safe_load(RATELIMIT_SERVICE_CONFIG.read_text(encoding="utf-8"))
    for prefix in ("/v1/", "/internal/v1/"):
        local = _route_config(shipped, prefix, "envoy.filters.http.local_ratelimit")
        remote = _route_config(global_, prefix, "envoy.filters.http.ratelimit")
        assert remote["rate_limits"] == local["rate_limits"]
        assert _route_config(global_, prefix, "envoy.filters.http.rbac") == _route_config(
            shipped, prefix, "envoy.filters.http.rbac"
        )
        budgets = {
            d["entries"][0]["value"]: d["token_bucket"]["max_tokens"]
            for d in local["descriptors"]
            if d["token_bucket"]["fill_interval"] == "60s"
        }
        assert service["domain"] == ratelimit["typed_config"]["domain"]
        assert {
            d["value"]: d["rate_limit"]["requests_per_unit"]
            for d in service["descriptors"]
            if "value" in d and d["rate_limit"]["unit"] == "minute"
        } == budgets
