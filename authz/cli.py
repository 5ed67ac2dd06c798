"""The `authz` command: serve | check | test | validate | replay | token.

Exit codes: 0 success (check: allow), 1 check denied, config invalid (validate) or a policy
test failed (test), 2 usage, unreadable request or config error (serve/check/test), or a
test path with no tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from authz import __version__
from authz.errors import ConfigError, NoTests, RequestError, TokenError
from authz.policy.compiler import CompiledConfig, load
from authz.policy.engines import ENGINE_NAMES

EXIT_OK, EXIT_DENIED, EXIT_USAGE = 0, 1, 2
EXIT_INVALID = 1
EXAMPLE = "deploy/envoy/policies/example.yaml"
_Sub = Any  # argparse's private _SubParsersAction


def listen_address(value: str, allow_empty: bool = False) -> str:
    """HOST:PORT (port 0-65535) or unix:PATH; anything else is a usage error, never a
    silent default port."""
    if allow_empty and value == "":
        return value
    if value.startswith("unix:"):
        if value == "unix:":
            raise argparse.ArgumentTypeError("unix: needs a socket path (unix:PATH)")
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT (port 0-65535) or unix:PATH, got {value!r}"
        )
    return value


def _command(sub: _Sub, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose help ends with a working example."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_serve(sub: _Sub) -> None:
    serve = _command(
        sub,
        "serve",
        "serve Envoy's ext_authz v3 Check over gRPC",
        f"authz serve --config {EXAMPLE} --listen 127.0.0.1:9191",
    )
    serve.set_defaults(handler=_serve)
    serve.add_argument("--config", required=True, help="policy file (YAML)")
    serve.add_argument(
        "--listen",
        default="127.0.0.1:9191",
        type=listen_address,
        help="HOST:PORT or unix:PATH (default 127.0.0.1:9191)",
    )
    serve.add_argument("--engine", choices=ENGINE_NAMES, help="override the file's engine")
    serve.add_argument(
        "--threads",
        type=int,
        default=0,
        help="0 (default): grpc.aio on one event loop per worker; N: a pool of N threads",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes sharing the port (default: the number of cores)",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument(
        "--max-concurrent",
        type=int,
        default=256,
        metavar="N",
        help="checks in flight per worker before refusing at once (0: no bound)",
    )
    serve.add_argument(
        "--watch-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often to look for changed policy files (0: only on SIGHUP)",
    )
    serve.add_argument(
        "--admin-listen",
        default="127.0.0.1:9192",
        type=lambda v: listen_address(v, allow_empty=True),
        help="HOST:PORT for /metrics, /healthz, /readyz ('' to disable)",
    )
    serve.add_argument(
        "--otlp-endpoint",
        help="OTLP/gRPC trace endpoint (default: OTEL_EXPORTER_OTLP_ENDPOINT; "
        "tracing is off when neither is set)",
    )
    _add_log_options(serve)


def _add_log_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--decision-log", default="-", help="file for decision lines, '-' for stdout, '' for none"
    )
    serve.add_argument(
        "--log-headers",
        action="store_true",
        help="include request headers in decision lines (masked)",
    )
    serve.add_argument(
        "--log-body",
        type=int,
        default=0,
        metavar="CHARS",
        help="include a redacted body excerpt of this many characters",
    )
    serve.add_argument(
        "--no-subject",
        action="store_true",
        help="keep the identity subject out of spans and decision lines",
    )
    serve.add_argument(
        "--log-replay",
        action="store_true",
        help="add a replayable request record to each decision line "
        "(credentials and sensitive text as salted hashes)",
    )
    serve.add_argument(
        "--log-explain",
        action="store_true",
        help="add to each decision line why it was decided, as `authz check --explain` "
        "prints it (values redacted)",
    )


def _add_check(sub: _Sub) -> None:
    check = _command(
        sub,
        "check",
        "decide one request offline and print the decision as JSON",
        'echo \'{"path": "/team/r", "headers": {"x-team": "sales"}, '
        f'"context": {{"policy": "team"}}}}\' | authz check --config {EXAMPLE} --request - '
        "--explain",
    )
    check.set_defaults(handler=_check)
    check.add_argument("--config", required=True, help="policy file (YAML)")
    check.add_argument(
        "--request",
        required=True,
        help="request description: a JSON or YAML file, '-' for standard input",
    )
    check.add_argument("--engine", choices=ENGINE_NAMES, help="override the file's engine")
    check.add_argument(
        "--explain",
        action="store_true",
        help="add how the policy was selected and, per rule, the value of each part",
    )


def _add_test(sub: _Sub) -> None:
    test = _command(
        sub,
        "test",
        "run policy tests on both engines",
        "authz test --coverage deploy/envoy/policies/",
    )
    test.set_defaults(handler=_test)
    test.add_argument("paths", nargs="+", help="test files, policy files with tests:, folders")
    test.add_argument(
        "--coverage", action="store_true", help="print rules reached / total per policy"
    )


def _add_validate(sub: _Sub) -> None:
    validate = _command(
        sub, "validate", "load and compile a policy file", f"authz validate {EXAMPLE}"
    )
    validate.set_defaults(handler=_validate)
    validate.add_argument("config", help="policy file (YAML)")
    validate.add_argument("--engine", choices=ENGINE_NAMES, help="override the file's engine")


def _add_replay(sub: _Sub) -> None:
    replay = _command(
        sub,
        "replay",
        "re-decide a decision log under a candidate config",
        "authz replay --config candidate.yaml decisions.jsonl",
    )
    replay.set_defaults(handler=_replay)
    replay.add_argument("--config", required=True, help="the candidate policy file")
    replay.add_argument("log", help="decision log written with --log-replay (JSON lines)")
    replay.add_argument("--show", type=int, default=20, help="changed requests to list")
    replay.add_argument("--engine", choices=ENGINE_NAMES, help="override the file's engine")


def _add_token(sub: _Sub) -> None:
    token = _command(
        sub,
        "token",
        "mint a signed development JWT and print it",
        "authz token --key deploy/envoy/keys/demo-signing-key.pem --kid demo-2026 "
        "--issuer https://idp.example.com --audience llm-gateway --subject demo-user "
        "--claim 'groups=[\"ml\"]'",
    )
    token.set_defaults(handler=_token)
    token.add_argument("--key", required=True, metavar="PEM", help="private key (PEM) to sign")
    token.add_argument("--kid", required=True, help="key id for the JWT header")
    token.add_argument("--issuer", required=True, metavar="ISS")
    token.add_argument(
        "--audience", required=True, action="append", metavar="AUD", help="repeat for several"
    )
    token.add_argument("--subject", required=True, metavar="SUB")
    token.add_argument(
        "--claim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another claim; VALUE is JSON when it parses as JSON, else a string",
    )
    token.add_argument("--ttl", type=int, default=3600, metavar="SECONDS", help="default 3600")
    token.add_argument(
        "--algorithm", metavar="ALG", help="default: from the key (RS256, ES256/384/512, EdDSA)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authz",
        description="A policy decision point for Envoy's ext_authz v3: CEL policies in YAML.",
        epilog="Run `authz COMMAND --help` for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"authz {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_serve, _add_check, _add_test, _add_validate, _add_replay, _add_token):
        add(sub)
    return parser


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
    checker = Checker(config, tracing, metrics, DecisionLog(stream, options))
    try:
        server = Server(
            checker,
            args.listen,
            args.admin_listen or None,
            args.threads,
            reuse_port=args.reuse_port,
            max_concurrent=args.max_concurrent or None,
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
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
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
