"""The `authz` command: serve | check | test | validate | replay | token.

Exit codes: 0 success (check: allow), 1 check denied, config invalid (validate) or a policy
test failed (test), 2 usage, unreadable request or config error (serve/check/test), or a
test path with no tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from authz.cli_args import parser
from authz.errors import ConfigError, NoTests, RequestError, TokenError
from authz.policy.compiler import CompiledConfig, load

EXIT_OK, EXIT_DENIED, EXIT_USAGE = 0, 1, 2
EXIT_INVALID = 1


def _masked_headers(config: CompiledConfig) -> frozenset[str]:
    """Headers never logged in clear: the fixed set plus those that carry credentials."""
    from authz.observability.decision_log import ALWAYS_MASKED

    identity = config.identity.config
    extra = {loc.header for p in identity.jwt for loc in p.locations if loc.header}
    if identity.api_keys is not None:
        extra.add(identity.api_keys.header)
    return ALWAYS_MASKED | extra


def _serve(args: argparse.Namespace) -> int:
    from authz.observability.decision_log import DecisionLog, LogOptions
    from authz.observability.metrics import Metrics
    from authz.observability.tracing import Tracing
    from authz.reload import Reloader
    from authz.server import Server, ServerError
    from authz.service import Checker

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    config = load(args.config, args.engine)
    if args.workers > 1 and not args.listen.startswith("unix:"):
        return _supervise(args)
    metrics = Metrics()
    options = LogOptions(
        headers=args.log_headers,
        body_chars=args.log_body,
        subject=not args.no_subject,
        masked_headers=_masked_headers(config),
        replay=args.log_replay,
        explain=args.log_explain,
    )
    try:
        stream = sys.stdout if args.decision_log == "-" else None
        if args.decision_log not in ("-", ""):
            stream = open(args.decision_log, "a", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"authz: {args.decision_log}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    tracing = Tracing(metrics, endpoint=args.otlp_endpoint, record_subject=not args.no_subject)
    budget = args.check_budget_ms / 1000 or None
    checker = Checker(config, tracing, metrics, DecisionLog(stream, options), budget)
    try:
        server = Server(
            checker,
            args.listen,
            args.admin_listen or None,
            args.threads,
            reuse_port=args.reuse_port,
            max_concurrent=args.max_concurrent or None,
            max_queue_seconds=args.max_queue_ms / 1000,
        )
        server.reloader = Reloader(checker, args.config, args.engine, args.watch_interval)
        return server.serve()
    except ServerError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _supervise(args: argparse.Namespace) -> int:
    """Run `--workers N` worker processes on one port (the config already loaded once)."""
    from authz.server import ServerError
    from authz.workers import Supervisor

    passed = [
        "--max-concurrent",
        str(args.max_concurrent),
        "--check-budget-ms",
        str(args.check_budget_ms),
        "--max-queue-ms",
        str(args.max_queue_ms),
        "--watch-interval",
        str(args.watch_interval),
        "--config",
        args.config,
        "--listen",
        args.listen,
        "--threads",
        str(args.threads),
        "--decision-log",
        args.decision_log,
        "--log-body",
        str(args.log_body),
    ]
    for flag, value in (("--engine", args.engine), ("--otlp-endpoint", args.otlp_endpoint)):
        if value:
            passed += [flag, value]
    for flag, on in (
        ("--log-headers", args.log_headers),
        ("--no-subject", args.no_subject),
        ("--log-replay", args.log_replay),
        ("--log-explain", args.log_explain),
    ):
        if on:
            passed.append(flag)
    try:
        return Supervisor(args.workers, passed, args.listen, args.admin_listen or None).run()
    except ServerError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _check(args: argparse.Namespace) -> int:
    from google.protobuf import json_format

    from authz.decision import record
    from authz.explain import Recorder
    from authz.request_file import load_request
    from authz.response import dynamic_metadata
    from authz.service import Checker

    config = load(args.config, args.engine)
    request = load_request(args.request)
    log = Recorder() if args.explain else None
    decision = Checker(config, log=log).check(request)  # type: ignore[arg-type]
    output: dict[str, Any] = {
        **record(decision),
        "headers": dict(decision.headers),
        "response_headers": dict(decision.response_headers),
        "remove_headers": list(decision.remove_headers),
        "metadata": dict(sorted(json_format.MessageToDict(dynamic_metadata(decision)).items())),
    }
    if log is not None and log.last is not None:
        output["selection"] = log.last.selection
        output["explain"] = log.last.rules
    print(json.dumps(output, indent=2, default=str))
    return EXIT_OK if decision.allowed else EXIT_DENIED


def _token(args: argparse.Namespace) -> int:
    from authz.devtoken import mint, parse_claims

    claims = parse_claims(args.claim)
    audience = args.audience[0] if len(args.audience) == 1 else args.audience
    print(
        mint(
            args.key,
            args.kid,
            {"iss": args.issuer, "aud": audience, "sub": args.subject, **claims},
            args.ttl,
            args.algorithm,
        )
    )
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from authz.replay import render, replay

    config = load(args.config, args.engine)
    try:
        with open(args.log, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        print(f"authz: {args.log}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(render(replay(config, lines), args.show))
    return EXIT_OK


def _test(args: argparse.Namespace) -> int:
    from authz.policytest import discover, run_suites, summary

    outcome, coverage = run_suites(discover(args.paths))
    for failure in outcome.failures:
        print(failure)
    unreached = coverage.unreached(outcome.reached)
    if unreached:
        print(f"rules no case reached: {', '.join(unreached)}")
    if args.coverage:
        print("coverage (rules that decided at least one case):")
        print("\n".join(coverage.table(outcome.reached)))
    print(summary(outcome))
    return EXIT_DENIED if outcome.failed else EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    try:
        config = load(args.config, args.engine)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.config}: ok ({len(config.policies)} policies, engine {config.engine.name})")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "serve": _serve,
        "check": _check,
        "test": _test,
        "validate": _validate,
        "replay": _replay,
        "token": _token,
    }
    handler = handlers[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except (RequestError, NoTests, TokenError) as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_USAGE
