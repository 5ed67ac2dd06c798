"""The response path's cost: what judging a 4 KB completion adds to a request's latency.

One authz (one worker), one Envoy, one upstream answering every request with the same 4 KB
OpenAI chat completion (clean text: nothing is denied or redacted, so the figure is the
cost of reading it). The same requests go, one at a time on one kept-alive connection,
through three routes of one Envoy:

- `no ext_proc`: ext_authz only (the filter disabled on the route), the baseline;
- `no response rules`: the policy has none, so authz asks Envoy for nothing after the
  request headers (mode_override): one extra round trip, no buffering;
- `response rules`: the policy reads the completion (secrets and personal data in
  `response.llm.text`, the usage), so the 4 KB body is buffered and judged.

Prints p50/p99 for each and the difference to the baseline. Run alone with
`python bench/response_path.py`, or as part of `make bench`.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.run import PY, start_server, stop  # noqa: E402
from tests.support.envoy import EnvoyHandle, launch_envoy  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_RESPONSE_REQUESTS", "2000"))
POLICY = """
policies:
  - name: judged
    default: allow
    rules: []
    response_rules:
      - name: credential-in-answer
        when: secrets(response.llm.text).size() > 0
        effect: deny
      - name: personal-data
        when: pii(response.llm.text).size() > 0
        effect: redact
      - name: usage
        when: response.llm.usage.output_tokens != null
        effect: allow
        response_headers:
          x-usage-output-tokens: >-
            response.llm.usage.output_tokens != null ? response.llm.usage.output_tokens : -1
  - name: unjudged
    default: allow
    rules: []
"""
FILTERS = "type.googleapis.com/envoy.extensions.filters"
ROUTES = {"no ext_proc": "/off/", "no response rules": "/unjudged/", "response rules": "/judged/"}


def completion(size: int = 4096) -> bytes:
    """An OpenAI chat completion of about `size` bytes, free of findings."""
    sentence = "The billing service moves to the new cluster in December, after the freeze. "
    text = ""
    while len(text) < size - 300:
        text += sentence
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 900, "completion_tokens": 850, "total_tokens": 1750},
    }
    return json.dumps(body).encode()


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes
    answer = completion()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def _route(prefix: str, policy: str | None) -> dict[str, Any]:
    per_filter: dict[str, Any] = {
        "envoy.filters.http.ext_authz": {
            "@type": f"{FILTERS}.http.ext_authz.v3.ExtAuthzPerRoute",
            "check_settings": {"context_extensions": {"policy": policy or "unjudged"}},
        }
    }
    if policy is None:
        per_filter["envoy.filters.http.ext_proc"] = {
            "@type": f"{FILTERS}.http.ext_proc.v3.ExtProcPerRoute",
            "disabled": True,
        }
    return {
        "match": {"prefix": prefix},
        "route": {"cluster": "upstream"},
        "typed_per_filter_config": per_filter,
    }


def envoy_config(listen: int, admin: int, authz: int, upstream: int) -> dict[str, Any]:
    """ext_authz then ext_proc (as deploy/envoy/envoy.yaml ships them) in front of the
    upstream; one route per variant."""
    h2 = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }

    def cluster(name: str, port: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
        endpoint = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
        out: dict[str, Any] = {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
            },
        }
        if options:
            out["typed_extension_protocol_options"] = options
        return out

    routes = [
        _route(ROUTES["no ext_proc"], None),
        _route(ROUTES["no response rules"], "unjudged"),
        _route(ROUTES["response rules"], "judged"),
    ]
    manager = {
        "@type": f"{FILTERS}.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
        "http_filters": [
            {
                "name": "envoy.filters.http.ext_authz",
                "typed_config": {
                    "@type": f"{FILTERS}.http.ext_authz.v3.ExtAuthz",
                    "transport_api_version": "V3",
                    "grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "timeout": "1s"},
                    "failure_mode_allow": False,
                },
            },
            {
                "name": "envoy.filters.http.ext_proc",
                "typed_config": {
                    "@type": f"{FILTERS}.http.ext_proc.v3.ExternalProcessor",
                    "grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "timeout": "2s"},
                    "failure_mode_allow": False,
                    "message_timeout": "2s",
                    "processing_mode": {
                        "request_header_mode": "SEND",
                        "response_header_mode": "SEND",
                        "request_body_mode": "NONE",
                        "response_body_mode": "BUFFERED",
                        "request_trailer_mode": "SKIP",
                        "response_trailer_mode": "SKIP",
                    },
                    "allow_mode_override": True,
                    "metadata_options": {
                        "forwarding_namespaces": {"untyped": ["envoy.filters.http.ext_authz"]}
                    },
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"{FILTERS}.http.router.v3.Router"},
            },
        ],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [
                {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [cluster("authz", authz, h2), cluster("upstream", upstream)],
        },
    }


def _latencies(port: int, path: str, count: int) -> list[float]:
    """Milliseconds per request, one at a time on one kept-alive connection."""
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("POST", path, body, {"content-type": "application/json"})
            response = connection.getresponse()
            data = response.read()
            out.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or len(data) < 4000:
                raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")
    finally:
        connection.close()
    return out


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(requests: int = REQUESTS) -> dict[str, dict[str, float]]:
    """p50/p99 per variant and the p50/p99 added over `no ext_proc`."""
    work = Path(tempfile.mkdtemp(prefix="authz-bench-response-"))
    policy = work / "response.yaml"
    policy.write_text(POLICY)
    upstream = ThreadingHTTPServer(("127.0.0.1", free_port()), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    authz_port, listen, admin = free_port(), free_port(), free_port()
    serve = [PY, "-m", "authz", "serve", "--config", str(policy), "--decision-log", ""]
    serve += ["--admin-listen", "", "--workers", "1", "--listen", f"127.0.0.1:{authz_port}"]
    authz = start_server(serve, authz_port, work / "authz.log")
    envoy: EnvoyHandle | None = None
    try:
        config = work / "envoy.yaml"
        port = upstream.server_address[1]
        config.write_text(yaml.safe_dump(envoy_config(listen, admin, authz_port, port)))
        envoy = launch_envoy(
            work,
            config,
            port=listen,
            admin_port=admin,
            log_level="error",
            extra_args=("--disable-hot-restart",),
        )
        for path in ROUTES.values():
            _latencies(listen, path, 200)  # warm up every path
        results: dict[str, dict[str, float]] = {}
        for name, path in ROUTES.items():
            values = _latencies(listen, path, requests)
            results[name] = {
                "p50_ms": round(statistics.median(values), 3),
                "p99_ms": round(_percentile(values, 0.99), 3),
            }
        base = results["no ext_proc"]
        for name in ("no response rules", "response rules"):
            results[name]["added_p50_ms"] = round(results[name]["p50_ms"] - base["p50_ms"], 3)
            results[name]["added_p99_ms"] = round(results[name]["p99_ms"] - base["p99_ms"], 3)
        return results
    finally:
        if envoy is not None:
            envoy.stop()
        stop(authz)
        upstream.shutdown()


def report(results: dict[str, dict[str, float]]) -> None:
    """The table `make bench` prints."""
    print(f"\nResponse path: a 4 KB completion, {REQUESTS} requests one at a time via Envoy")
    print(f"{'variant':<22}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}{'added p99':>11}")
    for name, row in results.items():
        added = f"{row.get('added_p50_ms', 0):>11.3f}{row.get('added_p99_ms', 0):>11.3f}"
        print(f"{name:<22}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}{added}")


if __name__ == "__main__":
    report(measure())
