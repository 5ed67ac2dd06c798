"""A check past its time budget ends in a check_timeout deny at the next stage boundary or
detector call; a worker whose event loop runs late reports itself not ready."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from authz.attributes import from_check_request
from authz.context import RequestContext
from authz.decide import decide_steps, run_steps
from authz.decision import CHECK_TIMEOUT
from authz.errors import CheckTimeout
from authz.functions import DetectorMemo
from authz.observability.metrics import Metrics
from authz.request_file import to_check_request
from authz.runtime import Runtime
from authz.serve_options import ServeOptions
from authz.server import LoopWatch, Server
from authz.service import Checker
from tests.unit.helpers import compile_policy

POLICY = """
engine: ENGINE
policies:
  - name: chat
    match: "true"
    rules:
      - name: secrets
        when: secrets(request.headers["x-prompt"]).size() > 0
        effect: deny
      - name: rest
        when: "true"
        effect: allow
"""
REQUEST = to_check_request({"method": "POST", "headers": {"x-prompt": "hello"}})


@pytest.mark.parametrize("engine", ["cel-cpp", "cel-python"])
def test_a_check_past_its_budget_is_denied(tmp_path: Path, engine: str) -> None:
    config = compile_policy(tmp_path, POLICY.replace("ENGINE", engine), engine)
    assert Checker(config, budget_seconds=5.0).check(REQUEST).allowed
    decision = Checker(config, budget_seconds=1e-9).check(REQUEST)
    assert not decision.allowed
    assert decision.reason == CHECK_TIMEOUT and decision.status == 403
    assert "budget" in decision.message
    assert Checker(config).check(REQUEST).allowed  # no budget: the CLI and tests


def test_detectors_stop_past_the_deadline(tmp_path: Path) -> None:
    config = compile_policy(tmp_path, POLICY.replace("ENGINE", "cel-cpp"), "cel-cpp")
    functions = config.functions
    memo = DetectorMemo(deadline=time.perf_counter() - 1)
    with pytest.raises(CheckTimeout, match=r"secrets\(\)"):
        functions.call(memo, "secrets", "token=Ab3defgh1")
    memo.deadline = None
    assert functions.call(memo, "secrets", "token=Ab3defgh1") == ["generic_secret"]


def test_a_late_event_loop_is_reported_and_recovers() -> None:
    watch = LoopWatch(0.05, Metrics())
    flips: list[bool] = []
    seen: list[bool] = []

    async def changed(state: bool) -> None:
        flips.append(state)

    async def main() -> None:
        task = asyncio.create_task(watch.run(changed))
        await asyncio.sleep(0.12)
        assert not watch.overloaded()
        look = threading.Timer(0.2, lambda: seen.append(watch.overloaded()))
        look.start()
        time.sleep(0.3)  # a check holding the loop: the admin thread sees it meanwhile
        await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        task.cancel()

    asyncio.run(main())
    assert seen == [True]
    assert flips[:2] == [True, False]


def test_readyz_says_overloaded(tmp_path: Path) -> None:
    config = compile_policy(tmp_path, POLICY.replace("ENGINE", "cel-cpp"), "cel-cpp")
    options = ServeOptions(config.path, "127.0.0.1:0", admin_listen="", max_queue_ms=10)
    server = Server(Runtime(Checker(config)), options)
    server.ready = True
    assert server.readiness()["ready"]
    server.watch.lag = 0.5
    state = server.readiness()
    assert state["ready"] is False and state["overloaded"] and state["queue_ms"] >= 500


def test_time_spent_waiting_is_not_counted(tmp_path: Path) -> None:
    from authz.service import _Budget

    def steps():  # a check that waits once (for a token's keys, a model's score)
        yield "pending"
        return "done"

    memo = DetectorMemo()
    budget = _Budget(time.perf_counter(), 0.1, memo)
    waiting = budget.waiting(steps())
    assert next(waiting) == "pending"
    time.sleep(0.2)  # the wait: longer than the whole budget
    with pytest.raises(StopIteration) as done:
        waiting.send(None)
    assert done.value.value == "done"
    budget.check("evaluation")  # still within budget: the wait was not counted
    time.sleep(0.15)
    with pytest.raises(CheckTimeout):
        budget.check("evaluation")
    assert memo.deadline == budget.deadline  # the detectors see the moved deadline


CACHED_LIVE = """
engine: ENGINE
cache: {max_entries: 100, ttl_seconds: 60}
policies:
  - name: chat
    rules:
      - name: secrets
        when: secrets(request.headers["x-prompt"] + " ").size() > 0
        effect: deny
      - name: rest
        when: "true"
        effect: allow
"""


@pytest.mark.parametrize("engine", ["cel-cpp", "cel-python"])
def test_a_detector_called_from_cel_past_the_deadline_is_a_timeout_never_cached(
    tmp_path: Path, engine: str
) -> None:
    """Inside CEL the engine turns the detector's CheckTimeout into an evaluation error; the
    check still ends as a timeout, and the decision cache does not keep a deny for it."""
    config = compile_policy(tmp_path, CACHED_LIVE.replace("ENGINE", engine), engine)
    assert config.live_calls  # the call is made from CEL, not precomputed
    request = to_check_request({"headers": {"x-prompt": "hello"}, "context": {"policy": "chat"}})
    attrs = from_check_request(request, config.limits)
    late = RequestContext("late", config, attrs)
    late.memo.deadline = time.perf_counter() - 1
    with pytest.raises(CheckTimeout, match=r"secrets\(\)"):
        run_steps(decide_steps(late))
    again = run_steps(decide_steps(RequestContext("again", config, attrs)))
    assert again.allowed and again.rule == "rest" and not again.cached
