"""The `authz` command line's arguments: one parser per command, each with an example.

Parsing only: authz/cli.py runs the command a parse names (`args.command`).
"""

from __future__ import annotations

import argparse
from typing import Any

from authz import __version__
from authz.policy.engine import ENGINE_NAMES
from authz.serve_options import ServeOptions

EXAMPLE = "deploy/envoy/policies/example.yaml"
_Sub = Any  # argparse's private _SubParsersAction
SERVE = ServeOptions(config="")  # `authz serve`'s defaults, kept with the options


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
    serve.add_argument("--config", required=True, help="policy file (YAML)")
    serve.add_argument(
        "--listen",
        default=SERVE.listen,
        type=listen_address,
        help="HOST:PORT or unix:PATH (default 127.0.0.1:9191)",
    )
    serve.add_argument("--engine", choices=ENGINE_NAMES, help="override the file's engine")
    _add_process_options(serve)
    _add_operations_options(serve)
    _add_log_options(serve)


def _add_process_options(serve: argparse.ArgumentParser) -> None:
    """How the worker processes serve, and when they shed load."""
    serve.add_argument(
        "--threads",
        type=int,
        default=SERVE.threads,
        help="0 (default): grpc.aio on one event loop per worker; N: a pool of N threads",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=SERVE.workers,
        help="worker processes sharing the port (default: the number of cores)",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument(
        "--max-concurrent",
        type=int,
        default=SERVE.max_concurrent,
        metavar="N",
        help="checks in flight per worker before refusing at once (0: no bound)",
    )
    serve.add_argument(
        "--check-budget-ms",
        type=float,
        default=SERVE.check_budget_ms,
        metavar="MS",
        help="a check still running past this stops with a deny, reason check_timeout"
        " (default 250, under Envoy's 1 s; 0: no budget)",
    )
    serve.add_argument(
        "--max-queue-ms",
        type=float,
        default=SERVE.max_queue_ms,
        metavar="MS",
        help="a worker whose checks wait longer than this behind others is not ready"
        " (/readyz 503, gRPC health NOT_SERVING; default 250; 0: never)",
    )


def _add_operations_options(serve: argparse.ArgumentParser) -> None:
    """Reloading the policy files, the admin port, tracing."""
    serve.add_argument(
        "--watch-interval",
        type=float,
        default=SERVE.watch_interval,
        metavar="SECONDS",
        help="how often to look for changed policy files (0: only on SIGHUP)",
    )
    serve.add_argument(
        "--admin-listen",
        default=SERVE.admin_listen,
        type=lambda v: listen_address(v, allow_empty=True),
        help="HOST:PORT for /metrics, /healthz, /readyz ('' to disable)",
    )
    serve.add_argument(
        "--otlp-endpoint",
        help="OTLP/gRPC trace endpoint (default: OTEL_EXPORTER_OTLP_ENDPOINT; "
        "tracing is off when neither is set)",
    )


def _add_log_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--decision-log",
        default=SERVE.decision_log,
        help="file for decision lines, '-' for stdout, '' for none",
    )
    serve.add_argument(
        "--log-headers",
        action="store_true",
        help="include request headers in decision lines (masked)",
    )
    serve.add_argument(
        "--log-body",
        type=int,
        default=SERVE.log_body,
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
    test.add_argument("paths", nargs="+", help="test files, policy files with tests:, folders")
    test.add_argument(
        "--coverage", action="store_true", help="print rules reached / total per policy"
    )


def _add_validate(sub: _Sub) -> None:
    validate = _command(
        sub, "validate", "load and compile a policy file", f"authz validate {EXAMPLE}"
    )
    validate.add_argument("config", help="policy file (YAML)")
    validate.add_argument("--engine", choices=ENGINE_NAMES, help="override the file's engine")


def _add_replay(sub: _Sub) -> None:
    replay = _command(
        sub,
        "replay",
        "re-decide a decision log under a candidate config",
        "authz replay --config candidate.yaml decisions.jsonl",
    )
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


def parser() -> argparse.ArgumentParser:
    """The whole command line."""
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
