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
from contextlib import closing
from typing import TYPE_CHECKING, Any

from authz.cli_args import parser
from authz.errors import ConfigError, NoTests, RequestError, TokenError
from authz.policy.compiler import load

if TYPE_CHECKING:
    from authz.serve_options import ServeOptions

EXIT_OK, EXIT_DENIED, EXIT_USAGE = 0, 1, 2
EXIT_INVALID = 1


def _serve(args: argparse.Namespace) -> int:
    from authz.runtime import Runtime
    from authz.serve_options import ServeOptions
    from authz.server import Server, ServerError

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    options = ServeOptions.from_args(args)
    config = load(options.config, options.engine)  # a broken config stops it here
    if options.workers > 1 and not options.listen.startswith("unix:"):
        config.close()  # the workers load their own
        return _supervise(options)
    try:
        runtime = Runtime.serving(options, config)
    except OSError as exc:
        config.close()
        print(f"authz: {options.decision_log}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    with runtime:  # closed after the drain, or when the server cannot start
        try:
            return Server(runtime, options).serve()
        except ServerError as exc:
            print(f"authz: {exc}", file=sys.stderr)
            return EXIT_USAGE


def _supervise(options: ServeOptions) -> int:
    """Run `--workers N` worker processes on one port (the config already loaded once)."""
    from authz.server import ServerError
    from authz.workers import Supervisor

    try:
        return Supervisor(options).run()
    except ServerError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _check(args: argparse.Namespace) -> int:
    from google.protobuf import json_format

    from authz.decision import record
    from authz.explain import Recorder
    from authz.request_file import load_request
    from authz.response import dynamic_metadata
    from authz.runtime import Runtime
    from authz.service import Checker

    request = load_request(args.request)
    log = Recorder() if args.explain else None
    with Runtime(Checker(load(args.config, args.engine), log=log)) as runtime:  # type: ignore[arg-type]
        decision = runtime.checker.check(request)
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

    with closing(load(args.config, args.engine)) as config:  # its key-fetch threads end here
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
    config.close()  # loaded to be judged, never to serve
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
