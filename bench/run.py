"""`make bench`: the floor and authz side by side, through a real Envoy and straight at gRPC.

One run, same load for every target:
- wrk through Envoy (ext_authz in front of a direct response) at full speed;
- h2load with a recorded CheckRequest straight at the gRPC port;
- h2load through Envoy at a fixed rate of half the floor's maximum (p50/p99 under load that
  both can carry).
Targets: the always-allow floor (bench/trivial_server.py); authz on the reference policy set
(bench/reference.yaml) with each engine, with 2 workers, and with the decision cache.
Against a real peer (bench/peer.py): Cerbos 0.55 deciding the same facts with equivalent
rules, and authz, both straight over gRPC with h2load (4 connections x 8 streams).
In process (bench/inprocess.py): where a reference check's time goes, stage by stage; every
detector on 64 KB of text dense with its candidates; the slowest hostile requests.
Then RSS per worker, RSS before/after one million in-process checks, and the latency the
response path adds to a 4 KB completion (bench/response_path.py).
Prints a table and writes bench/results.json. No assertion anywhere: these are figures.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench import inprocess, peer, workload  # noqa: E402
from tests.support.envoy import EnvoyHandle, launch_envoy  # noqa: E402
from tests.support.health import wait_grpc_serving, wait_port  # noqa: E402
from tests.support.ports import LOCALHOST, free_port  # noqa: E402
from tests.support.proc import Proc, children  # noqa: E402

PY = sys.executable
DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = 32
MILLION = int(os.environ.get("BENCH_CHECKS", "1000000"))


@dataclass
class Figures:
    """One measurement."""

    target: str
    load: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def ensure_tools() -> None:
    """wrk and h2load from Debian, installed if missing."""
    missing = [p for p, b in (("wrk", "wrk"), ("nghttp2-client", "h2load")) if not shutil.which(b)]
    if missing:
        print(f"installing {' '.join(missing)} from Debian ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *missing],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


class Workdir:
    """Files the tools need: wrk's script, h2load's request body, Envoy's config."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="authz-bench-"))
        token = workload.token()
        self.body = workload.chat_body()
        self.headers = workload.headers(token)
        lua = ["wrk.method = 'POST'", f"wrk.body = {json.dumps(self.body.decode())}"]
        lua += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in self.headers.items()]
        (self.path / "chat.lua").write_text("\n".join(lua) + "\n")
        (self.path / "chat.json").write_bytes(self.body)
        check = workload.check_request(self.body, token).SerializeToString()
        (self.path / "check.grpc").write_bytes(b"\0" + len(check).to_bytes(4, "big") + check)
        cached = (HERE / "reference.yaml").read_text() + "\ncache: {max_entries: 10000}\n"
        self.cached_policy = HERE / ".reference-cached.yaml"
        self.cached_policy.write_text(cached)

    def envoy_config(self, authz_port: int) -> tuple[Path, int, int]:
        """Render Envoy's config for a target; returns path, listener and admin ports."""
        listen, admin = free_port(), free_port()
        text = string.Template((HERE / "envoy.yaml.tmpl").read_text()).substitute(
            listen_port=listen, admin_port=admin, authz_port=authz_port
        )
        path = self.path / f"envoy-{authz_port}.yaml"
        path.write_text(text)
        return path, listen, admin


def start_server(command: list[str], port: int, log: Path) -> Proc:
    """A gRPC server (authz or the floor) in its own process group, once its health says
    SERVING."""
    server = Proc(command, log_path=log, cwd=ROOT).start()
    try:
        wait_grpc_serving(f"{LOCALHOST}:{port}", 30, proc=server)
    except BaseException:
        server.stop()
        raise
    return server


def stop(server: Proc) -> None:
    """SIGTERM the group (authz drains its checks), SIGKILL after 20 s."""
    server.stop(timeout=20)


def start_envoy(work: Workdir, authz_port: int, logs: Path) -> EnvoyHandle:
    """Envoy (2 worker threads) in front of authz_port, ready; logs go to `logs`."""
    config, listen, admin = work.envoy_config(authz_port)
    return launch_envoy(
        logs,
        config,
        port=listen,
        admin_port=admin,
        concurrency=2,
        log_level="error",
        extra_args=("--disable-hot-restart",),
    )


def wrk(url: str, script: Path) -> tuple[float, float, float, int]:
    """req/s, p50 ms, p99 ms, errors (non-2xx + socket errors) from wrk --latency."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = 0
    for pattern in (r"Non-2xx or 3xx responses:\s+(\d+)", r"Socket errors:.*?(\d+)"):
        match = re.search(pattern, out)
        errors += int(match.group(1)) if match else 0
    return rps, pct("50"), pct("99"), errors


def h2load(
    url: str,
    body: Path,
    headers: dict[str, str],
    *,
    h1: bool = False,
    rate: float | None = None,
    clients: int = 16,
    log: Path,
) -> tuple[float, float, float, int]:
    """req/s, p50 ms, p99 ms, errors from h2load and its per-request log."""
    command = ["h2load", f"-c{clients}", f"-D{DURATION}", "-d", str(body), "--log-file", str(log)]
    command += ["--h1"] if h1 else ["-m8"]
    if rate is not None:
        command += [f"--rps={max(rate / clients, 0.1):.2f}"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    failed = re.search(r"(\d+) failed, (\d+) errored", out)
    durations = sorted(
        int(line.split()[2]) / 1000 for line in log.read_text().splitlines() if line.strip()
    )
    if not durations:
        return rps, 0.0, 0.0, int(failed.group(1)) if failed else 0
    p50 = statistics.median(durations)
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    return rps, p50, p99, (int(failed.group(1)) + int(failed.group(2))) if failed else 0


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def load_cpu_seconds() -> float:
    """CPU time of the finished load generators (wrk, h2load) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_request(
    names: tuple[str, ...], before: tuple[float, ...], after: tuple[float, ...], rps: float
) -> dict[str, int]:
    """CPU microseconds each named party spent per request served during one load."""
    served = max(rps * DURATION, 1)
    return {
        name: round((a - b) / served * 1e6) for name, a, b in zip(names, after, before, strict=True)
    }


def worker_pids(server: Proc) -> list[int]:
    """The serving processes: the children of a supervisor, or the process itself."""
    return children(server.pid) or [server.pid]


def measure(
    name: str,
    command: list[str],
    port: int,
    work: Workdir,
    fixed_rate: float | None,
    full: bool = True,
) -> list[Figures]:
    """All loads against one target (`full=False`: only the fixed-rate run)."""
    logs = work.path / name.replace(" ", "_")
    logs.mkdir()
    server = start_server(command, port, logs / "server.log")
    results: list[Figures] = []
    try:
        envoy = start_envoy(work, port, logs)
        try:
            url = envoy.url(workload.PATH)
            if full:
                print(f"  {name}: wrk through Envoy ...", flush=True)
                pids = sorted({*worker_pids(server), server.pid})
                before = cpu_seconds(pids), cpu_seconds([envoy.proc.pid]), load_cpu_seconds()
                rps, p50, p99, errors = wrk(url, work.path / "chat.lua")
                after = cpu_seconds(pids), cpu_seconds([envoy.proc.pid]), load_cpu_seconds()
                cpu = per_request(("authz", "envoy", "wrk"), before, after, rps)
                rss = [round(rss_mb(pid), 1) for pid in worker_pids(server)]
                extra = {"rss_mb_per_worker": rss, "cpu_us_per_request": cpu}
                results.append(Figures(name, "wrk via Envoy", rps, p50, p99, errors, extra))
            if fixed_rate is not None:
                print(f"  {name}: fixed {fixed_rate:.0f} req/s through Envoy ...", flush=True)
                rps, p50, p99, errors = h2load(
                    url,
                    work.path / "chat.json",
                    work.headers,
                    h1=True,
                    rate=fixed_rate,
                    clients=8,
                    log=logs / "fixed.log",
                )
                results.append(
                    Figures(name, f"fixed {fixed_rate:.0f}/s via Envoy", rps, p50, p99, errors)
                )
        finally:
            envoy.stop()
        if not full:
            return results
        print(f"  {name}: h2load straight at gRPC ...", flush=True)
        grpc_url = f"http://127.0.0.1:{port}/envoy.service.auth.v3.Authorization/Check"
        pids = sorted({*worker_pids(server), server.pid})
        before = cpu_seconds(pids), load_cpu_seconds()
        rps, p50, p99, errors = h2load(
            grpc_url,
            work.path / "check.grpc",
            {"content-type": "application/grpc", "te": "trailers"},
            log=logs / "grpc.log",
        )
        after = cpu_seconds(pids), load_cpu_seconds()
        cpu = per_request(("authz", "h2load"), before, after, rps)
        results.append(
            Figures(name, "h2load gRPC", rps, p50, p99, errors, {"cpu_us_per_request": cpu})
        )
    finally:
        stop(server)
    return results


def peer_comparison(work: Workdir) -> tuple[list[Figures], str]:
    """Cerbos and authz (default settings) deciding the chat request's facts, each straight
    over gRPC with h2load, 4 connections x 8 streams; and Cerbos's answer to it."""
    missing = peer.ensure()
    if missing:
        return [], missing
    logs = work.path / "peer"
    logs.mkdir()
    facts = peer.facts(work.body, "bench-agent", ["ml"], workload.PATH)
    grpc_headers = {"content-type": "application/grpc", "te": "trailers"}
    results, effects = [], []
    for variant in ("regex", "verdicts"):
        print(f"Cerbos 0.55 ({variant}): h2load straight at gRPC, 4 x 8 ...", flush=True)
        folder = logs / variant
        grpc_port, http_port = free_port(), free_port()
        peer.write_policies(folder / "policies", variant)
        config = peer.write_config(folder, grpc_port, http_port)
        server = Proc(
            peer.command(config), log_path=folder / "cerbos.log", env=peer.environment()
        ).start()
        try:
            wait_port(grpc_port, 30, proc=server)
            request, effect = None, ""
            for _ in range(50):
                try:
                    request, effect = peer.record_request(folder, facts, grpc_port)
                    break
                except RuntimeError:
                    time.sleep(0.2)
            if request is None:
                return [], "Cerbos did not answer"
            effects.append(f"{variant}: {effect}")
            before = cpu_seconds([server.pid]), load_cpu_seconds()
            url = f"http://127.0.0.1:{grpc_port}{peer.SERVICE_PATH}"
            rps, p50, p99, errors = h2load(
                url, request, grpc_headers, clients=4, log=folder / "h2load.log"
            )
            after = cpu_seconds([server.pid]), load_cpu_seconds()
            extra = {"cpu_us_per_request": per_request(("cerbos", "h2load"), before, after, rps)}
            name = f"Cerbos 0.55 {variant}"
            results.append(Figures(name, "h2load gRPC 4x8", rps, p50, p99, errors, extra))
        finally:
            stop(server)
    print("authz default (w2): h2load straight at gRPC, 4 x 8 ...", flush=True)
    port = free_port()
    command = [
        PY, "-m", "authz", "serve", "--decision-log", "", "--admin-listen", "",
        "--config", str(HERE / "reference.yaml"), "--listen", f"127.0.0.1:{port}",
        "--workers", "2",
    ]  # fmt: skip
    server = start_server(command, port, logs / "authz.log")
    try:
        pids = sorted({*worker_pids(server), server.pid})
        before = cpu_seconds(pids), load_cpu_seconds()
        url = f"http://127.0.0.1:{port}/envoy.service.auth.v3.Authorization/Check"
        rps, p50, p99, errors = h2load(
            url, work.path / "check.grpc", grpc_headers, clients=4, log=logs / "authz-h2load.log"
        )
        after = cpu_seconds(pids), load_cpu_seconds()
        extra = {"cpu_us_per_request": per_request(("authz", "h2load"), before, after, rps)}
        results.append(
            Figures("authz default (w2)", "h2load gRPC 4x8", rps, p50, p99, errors, extra)
        )
    finally:
        stop(server)
    return results, f"Cerbos's answers to the chat request's facts: {', '.join(effects)}"


def in_process() -> dict[str, Any]:
    """Stage breakdown, detectors on dense text, the slowest hostile requests."""
    print("in process: the stages of a reference check ...", flush=True)
    stages = inprocess.stage_breakdown(int(os.environ.get("BENCH_STAGE_CHECKS", "20000")))
    print("in process: detectors on dense text, hostile requests ...", flush=True)
    return {
        "stages": stages,
        "detectors": inprocess.detector_table(),
        "prompts": inprocess.prompt_costs(),
        "hostile": inprocess.hostile_requests(),
    }


def million_checks() -> dict[str, float]:
    """RSS before and after MILLION in-process checks on the reference set (cel-cpp)."""
    from authz.policy.compiler import load
    from authz.service import Checker

    checker = Checker(load(str(HERE / "reference.yaml")))
    token = workload.token()
    requests = [workload.check_request(workload.chat_body(4096 + i), token) for i in range(16)]
    for request in requests * 200:
        checker.check(request)  # warm up
    before = rss_mb(os.getpid())
    started = time.perf_counter()
    for index in range(MILLION):
        checker.check(requests[index % len(requests)])
    elapsed = time.perf_counter() - started
    after = rss_mb(os.getpid())
    return {
        "checks": MILLION,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "growth_pct": round((after - before) / before * 100, 2),
        "us_per_check": round(elapsed / MILLION * 1e6, 1),
    }


def main() -> int:
    """Run everything, print the table, write bench/results.json."""
    ensure_tools()
    work = Workdir()
    serve = [PY, "-m", "authz", "serve", "--decision-log", "", "--admin-listen", ""]
    all_results: list[Figures] = []

    floor_port = free_port()
    print("floor (always-allow, sync grpcio, 1 process)", flush=True)
    floor = measure(
        "floor",
        [PY, str(HERE / "trivial_server.py"), "--port", str(floor_port)],
        floor_port,
        work,
        fixed_rate=None,
    )
    half = floor[0].rps / 2
    floor += measure(
        "floor@half",
        [PY, str(HERE / "trivial_server.py"), "--port", str(floor_port)],
        floor_port,
        work,
        half,
        full=False,
    )
    all_results += floor
    # The default settings are cel-cpp, grpc.aio, one worker per core (2 here).
    targets = [
        ("authz default (w2)", ["--workers", "2"], half),
        ("authz cache (w2)", ["--workers", "2"], None),
        ("authz cel-cpp w1", ["--workers", "1"], None),
        ("authz cel-cpp w1 t2", ["--workers", "1", "--threads", "2"], None),
        ("authz cel-python w2", ["--workers", "2", "--engine", "cel-python"], None),
    ]
    for name, extra, rate in targets:
        port = free_port()
        policy = work.cached_policy if "cache" in name else HERE / "reference.yaml"
        print(name, flush=True)
        command = [*serve, "--config", str(policy), "--listen", f"127.0.0.1:{port}", *extra]
        all_results += measure(name, command, port, work, rate)
    peers, peer_note = peer_comparison(work)
    all_results += peers
    measured = in_process()
    print(f"{MILLION} in-process checks for memory growth ...", flush=True)
    memory = million_checks()
    print("the response path: a 4 KB completion judged by authz (ext_proc) ...", flush=True)
    from bench import response_path

    response = response_path.measure()
    report(all_results, memory)
    report_peer(all_results, peer_note)
    report_in_process(measured)
    response_path.report(response)
    results = json.loads((HERE / "results.json").read_text())
    results["response_path"] = response
    results["peer"] = {"note": peer_note}
    results["in_process"] = measured
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def ratio(
    results: list[Figures], target: str, load: str, base: str = "floor", key: str = "rps"
) -> float | None:
    """target/base for one load."""

    def find(name: str) -> Figures | None:
        return next((r for r in results if r.target == name and r.load.startswith(load)), None)

    a, b = find(target), find(base)
    if a is None or b is None or getattr(b, key) == 0:
        return None
    return round(getattr(a, key) / getattr(b, key), 2)


def report_peer(results: list[Figures], note: str) -> None:
    """authz against Cerbos, the same load straight over gRPC."""
    rows = [r for r in results if r.load == "h2load gRPC 4x8"]
    print(f"\nAgainst a real peer, h2load straight at gRPC, 4 connections x 8 streams ({note}):")
    for r in rows:
        cpu = ", ".join(f"{k} {v}" for k, v in r.extra.get("cpu_us_per_request", {}).items())
        print(
            f"  {r.target:<22}{r.rps:>9.0f} decisions/s  p50 {r.p50_ms:.2f} ms  "
            f"p99 {r.p99_ms:.2f} ms  errors {r.errors}  CPU us/decision: {cpu}"
        )
    mine = next((r for r in rows if r.target.startswith("authz")), None)
    for theirs in (r for r in rows if r.target.startswith("Cerbos")):
        if mine and theirs.rps:
            ratio = mine.rps / theirs.rps
            print(f"decisions/s, authz / {theirs.target} (target >= 1.0): {ratio:.2f}")


def report_in_process(measured: dict[str, Any]) -> None:
    """The stage breakdown, the detector table and the hostile requests."""
    stages = measured["stages"]
    print(
        f"\nWhere a reference check's time goes, in process (us per check: "
        f"{stages['us_per_check']} uninstrumented, target <= 50; {stages['timed_us']} timed):"
    )
    print("  " + "  ".join(f"{k} {v}" for k, v in stages["stages"].items()))
    names = list(measured["detectors"][0][1]) if measured["detectors"] else []
    print("\nDetectors alone on 64 KB of text dense with candidates, CPU ms (median of 3):")
    print(f"  {'text':<30}" + "".join(f"{n:>16}" for n in names))
    for text, row in measured["detectors"]:
        print(f"  {text:<30}" + "".join(f"{row[n]:>16.2f}" for n in names))
    print(
        "\nInjection detectors on benign prompts, CPU ms (median over windows of the package "
        "corpora; target injection_score <= 1 ms for 1 KB, injection() <= 0.5 ms for 4 KB):"
    )
    print("  " + "  ".join(f"{k} {v}" for k, v in measured["prompts"].items()))
    hostile = measured["hostile"]
    print("\nHostile requests on the reference set, decision CPU ms (median of 3), slowest first:")
    for name, ms, reason, size in hostile:
        print(f"  {ms:>8.2f}  {name:<50}{size:>9} B  {reason}")
    if hostile:
        name, ms, _, size = hostile[0]
        print(f"slowest hostile request (target <= 20 ms): {name}, {size} bytes, {ms:.2f} ms")


def report(results: list[Figures], memory: dict[str, float]) -> None:
    """Print the table and the target ratios; write bench/results.json."""
    floor_wrk = next(r for r in results if r.target == "floor" and r.load == "wrk via Envoy")
    floor_grpc = next(r for r in results if r.target == "floor" and r.load == "h2load gRPC")
    print()
    print(
        f"{'target':<24}{'load':<26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'x floor':>9}"
        f"{'errors':>8}"
    )
    for r in results:
        base = (
            floor_wrk
            if r.load == "wrk via Envoy"
            else (floor_grpc if r.load == "h2load gRPC" else None)
        )
        times = f"{r.rps / base.rps:.2f}" if base and base.rps else "-"
        print(
            f"{r.target:<24}{r.load:<26}{r.rps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{times:>9}{r.errors:>8}"
        )
    print("\nCPU time per request served (us), where the 2 cores went:")
    for r in results:
        if "cpu_us_per_request" in r.extra:
            cpu = ", ".join(f"{k} {v}" for k, v in r.extra["cpu_us_per_request"].items())
            print(f"  {r.target:<24}{r.load:<16}{cpu}")
    for r in results:
        if "rss_mb_per_worker" in r.extra:
            print(f"RSS per worker, {r.target}: {r.extra['rss_mb_per_worker']} MiB")
    targets = {
        "req/s through Envoy, default settings / floor (target >= 0.8)": ratio(
            results, "authz default (w2)", "wrk"
        ),
        "p99 at half the floor's max, default settings / floor (target <= 1.3)": ratio(
            results, "authz default (w2)", "fixed", "floor@half", "p99_ms"
        ),
        "req/s with decision-cache hits / floor (target >= 1.0)": ratio(
            results, "authz cache (w2)", "wrk"
        ),
        "gRPC req/s, 2 workers / 1 worker (target >= 1.7)": ratio(
            results, "authz default (w2)", "h2load", "authz cel-cpp w1"
        ),
        "gRPC req/s, 1 worker: grpc.aio (default) / thread pool (--threads 2)": ratio(
            results, "authz cel-cpp w1", "h2load", "authz cel-cpp w1 t2"
        ),
        "req/s through Envoy, 1 worker: grpc.aio (default) / thread pool (--threads 2)": ratio(
            results, "authz cel-cpp w1", "wrk", "authz cel-cpp w1 t2"
        ),
    }
    print()
    for label, value in targets.items():
        print(f"{label}: {value}")
    worker_rss = [
        max(r.extra["rss_mb_per_worker"])
        for r in results
        if r.target == "authz default (w2)" and r.extra.get("rss_mb_per_worker")
    ]
    serving = f"{worker_rss[0]} MiB" if worker_rss else "not measured"
    print(f"memory: RSS per serving worker, default settings (target <= 80 MiB): {serving}")
    print(f"memory: {memory}")
    machine = {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpu_model": _cpu_model(),
    }
    out = {
        "machine": machine,
        "duration_s": DURATION,
        "results": [asdict(r) for r in results],
        "ratios": targets,
        "memory": memory,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (HERE / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"machine: {machine}")
    print("written: bench/results.json")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
