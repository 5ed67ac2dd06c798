"""`make soak`: authz (default settings, reference policy set) behind a real Envoy for
SOAK_SECONDS (default 600) at 80% of the maximum measured just before, by h2load at a fixed
rate. Prints a table: requests, errors (anything but the expected 200), p50/p99, and RSS of
each worker at the start and the end (growth must stay under 10%).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))


def main() -> int:
    """Measure the maximum, then hold 80% of it and watch errors and memory."""
    run.ensure_tools()
    work = run.Workdir()
    port = run.free_port()
    command = [
        run.PY,
        "-m",
        "authz",
        "serve",
        "--decision-log",
        "",
        "--admin-listen",
        "",
        "--config",
        str(run.HERE / "reference.yaml"),
        "--listen",
        f"127.0.0.1:{port}",
    ]
    server = run.start_server(command, port, work.path / "soak-server.log")
    try:
        envoy = run.start_envoy(work, port, work.path)
        try:
            url = envoy.url(run.workload.PATH)
            run.DURATION = 10
            maximum, *_ = run.wrk(url, work.path / "chat.lua")
            rate = 0.8 * maximum
            pids = run.worker_pids(server)
            rss_start = {pid: run.rss_mb(pid) for pid in pids}
            print(
                f"max {maximum:.0f} req/s; soaking {SECONDS} s at {rate:.0f} req/s ...", flush=True
            )
            run.DURATION = SECONDS
            started = time.monotonic()
            rps, p50, p99, errors = run.h2load(
                url,
                work.path / "chat.json",
                work.headers,
                h1=True,
                rate=rate,
                clients=16,
                log=work.path / "soak.log",
            )
            elapsed = time.monotonic() - started
            rss_end = {pid: run.rss_mb(pid) for pid in pids}
            statuses = [
                line.split()[1]
                for line in (work.path / "soak.log").read_text().splitlines()
                if line.strip()
            ]
            non_200 = sum(status != "200" for status in statuses)
        finally:
            envoy.stop()
    finally:
        run.stop(server)
    print()
    print(
        f"{'seconds':>8}{'requests':>10}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'non-200':>9}{'failed':>8}"
    )
    print(
        f"{elapsed:>8.0f}{len(statuses):>10}{rps:>8.0f}{p50:>8.2f}{p99:>8.2f}{non_200:>9}"
        f"{errors:>8}"
    )
    print()
    print(f"{'worker':>8}{'RSS start MiB':>15}{'RSS end MiB':>13}{'growth %':>10}")
    worst = 0.0
    for pid in pids:
        growth = (rss_end[pid] - rss_start[pid]) / rss_start[pid] * 100
        worst = max(worst, growth)
        print(f"{pid:>8}{rss_start[pid]:>15.1f}{rss_end[pid]:>13.1f}{growth:>10.2f}")
    verdict = non_200 == 0 and errors == 0 and worst < 10
    print(
        f"\nsoak {'passed' if verdict else 'FAILED'}: {non_200 + errors} errors, "
        f"worst RSS growth {worst:.2f}% (limit 10%)"
    )
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
