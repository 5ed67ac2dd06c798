"""The command as a newcomer meets it: help and version, input the way people write it, a
development token, and ambiguity refused (a port-less --listen, a misspelt key)."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from authz import __version__
from authz.cli import main
from authz.errors import ConfigError
from authz.identity.jwks import JwksError, RemoteJwks
from authz.policy.loader import load_config
from tests.unit.helpers import write_policy

EXAMPLE = "deploy/envoy/policies/example.yaml"
KEY = "deploy/envoy/keys/demo-signing-key.pem"
COMMANDS = ("serve", "check", "test", "validate", "replay", "token")
TEAM = {"path": "/team/r", "headers": {"x-team": "ml"}, "context": {"policy": "team"}}


def authz(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it."""
    command = [str(Path(sys.executable).parent / "authz"), *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)


def test_help_lists_every_command_and_each_has_an_example() -> None:
    top = authz("--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert f"\n    {command} " in top.stdout, command
        own = authz(command, "--help")
        example = own.stdout.split("\nexample:\n  ", 1)[-1]
        assert own.returncode == 0 and f"authz {command} " in example, own.stdout


def test_version() -> None:
    shown = authz("--version")
    assert (shown.returncode, shown.stdout.strip()) == (0, f"authz {__version__}")


def test_the_check_example_in_its_help_runs() -> None:
    example = authz("check", "--help").stdout.split("example:\n  ", 1)[1].strip()
    ran = subprocess.run(
        example.replace("authz check", f"{Path(sys.executable).parent / 'authz'} check"),
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 1 and json.loads(ran.stdout)["reason"] == "default", ran.stderr


def test_request_from_stdin() -> None:
    ran = authz("check", "--config", EXAMPLE, "--request", "-", stdin=json.dumps(TEAM))
    assert ran.returncode == 0 and json.loads(ran.stdout)["rule"] == "ml-team"


@pytest.mark.parametrize("name", ["req.yaml", "req.yml", "req.txt"])
def test_yaml_request_files(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_text(
        "path: /team/r\nheaders:\n  x-team: ml\ncontext: {policy: team}\nsource: {port: 5555}\n"
    )
    assert main(["check", "--config", EXAMPLE, "--request", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "ml-team"


def test_yaml_from_stdin() -> None:
    ran = authz("check", "--config", EXAMPLE, "--request", "-", stdin="path: /public/x\n")
    assert ran.returncode == 1 and json.loads(ran.stdout)["reason"] == "no_policy", ran.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"source": {"port": "x"}}', "source.port must be an integer from 0 to 65535, got 'x'"),
        ('{"destination": {"port": 70000}}', "destination.port must be an integer from 0 to"),
        ('{"source": {"adress": "1.2.3.4"}}', "unknown source keys: adress"),
        ('{"pathh": "/a"}', "unknown request keys: pathh; did you mean 'path'?"),
        ('{"headers": {"x": 1}}', "headers must be an object of string values"),
        ('{"path": "/a",\n  "headers": }', "<stdin>:2:14: invalid JSON"),
        ("path: [\n", "<stdin>:2:1: invalid YAML"),
        ("[1, 2]", "a request must be a JSON object"),
        ('{"metadata": {"ns": 5}}', "metadata.ns"),
    ],
)
def test_a_bad_request_is_exit_2_with_one_line(text: str, message: str) -> None:
    ran = authz("check", "--config", EXAMPLE, "--request", "-", stdin=text)
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert message in ran.stderr, ran.stderr


def test_a_missing_request_file_is_exit_2(tmp_path: Path) -> None:
    ran = authz("check", "--config", EXAMPLE, "--request", str(tmp_path / "none.json"))
    assert ran.returncode == 2 and "cannot read: No such file or directory" in ran.stderr


@pytest.mark.parametrize("listen", ["127.0.0.1", "127.0.0.1:", "127.0.0.1:x", ":9191", "unix:"])
def test_listen_without_a_port_is_a_usage_error(listen: str) -> None:
    ran = authz("serve", "--config", EXAMPLE, "--listen", listen, "--workers", "1")
    assert ran.returncode == 2
    assert "error: argument --listen: " in ran.stderr and "PATH" in ran.stderr


def test_admin_listen_is_checked_too() -> None:
    ran = authz("serve", "--config", EXAMPLE, "--admin-listen", "9192", "--workers", "1")
    assert ran.returncode == 2 and "argument --admin-listen" in ran.stderr


@pytest.mark.parametrize(
    ("typo", "fragment"),
    [
        ("whenn", "unknown key 'whenn' in rule; did you mean 'when'?"),
        ("efect", "unknown key 'efect' in rule; did you mean 'effect'?"),
        ("zzz", "unknown key 'zzz' in rule (known:"),
    ],
)
def test_unknown_keys_get_a_did_you_mean(tmp_path: Path, typo: str, fragment: str) -> None:
    path = write_policy(
        tmp_path,
        f"""
        policies:
          - name: p
            rules:
              - {{name: r, when: "true", effect: allow, {typo}: x}}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert fragment in str(caught.value)


def test_a_misspelt_top_level_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_policy(tmp_path, "polices: []\n")
    assert main(["validate", str(path)]) == 1
    assert (
        "unknown key 'polices' in the config; did you mean 'policies'?" in capsys.readouterr().err
    )


def test_token_is_verified_by_the_example_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--key", KEY, "--kid", "demo-2026", "--issuer", "https://idp.example.com"]
    args += ["--audience", "llm-gateway", "--subject", "agent-support"]
    args += ["--claim", 'groups=["ml"]', "--claim", "tier=gold", "--claim", "n=3", "--ttl", "60"]
    assert main(["token", *args]) == 0
    token = capsys.readouterr().out.strip()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (header["alg"], header["kid"]) == ("RS256", "demo-2026")
    assert claims["groups"] == ["ml"] and claims["tier"] == "gold" and claims["n"] == 3
    assert claims["exp"] - claims["iat"] == 60 and claims["aud"] == "llm-gateway"
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps(
            {
                "path": "/jwt/me",
                "headers": {"authorization": f"Bearer {token}"},
                "context": {"policy": "jwt"},
            }
        )
    )
    assert main(["check", "--config", EXAMPLE, "--request", str(request)]) == 0
    decided = json.loads(capsys.readouterr().out)
    assert decided["headers"]["x-authz-subject"] == "agent-support"


def test_token_algorithm_from_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    for key, alg in (
        (ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    ):
        pem = tmp_path / f"{alg}.pem"
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        args = ["--key", str(pem), "--kid", "k", "--issuer", "i", "--audience", "a"]
        assert main(["token", *args, "--audience", "b", "--subject", "s"]) == 0
        token = capsys.readouterr().out.strip()
        assert jwt.get_unverified_header(token)["alg"] == alg
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == ["a", "b"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--claim", "novalue"], "--claim 'novalue': expected NAME=VALUE"),
        (["--key", "/no/such.pem"], "/no/such.pem: cannot read"),
        (["--key", "deploy/envoy/keys/jwks.json"], "not an unencrypted PEM private key"),
    ],
)
def test_token_errors_are_one_line(extra: list[str], message: str) -> None:
    args = ["--key", KEY, "--kid", "k", "--issuer", "i", "--audience", "a", "--subject", "s"]
    ran = authz("token", *args, *extra)
    assert ran.returncode == 2 and message in ran.stderr and ran.stderr.count("\n") == 1


def test_the_jwks_log_says_keeping_only_when_keys_are_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    documents = [JwksError("down"), {"k": ["a-key"]}, JwksError("down again")]

    def fetch(uri: str, timeout: float) -> dict:
        result = documents.pop(0)
        if isinstance(result, Exception):
            raise result
        return result  # type: ignore[return-value]

    jwks = RemoteJwks("http://x/jwks", 0.001, 1, 0, fetch=fetch)
    caplog.set_level(logging.WARNING, "authz")
    for _ in range(3):
        with contextlib.suppress(JwksError):
            jwks._refresh().result(5)  # one fetch, as a refresh runs it
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "keeping" not in warnings[0] and "no keys were ever fetched" in warnings[0]
    assert "keeping the last good 1 keys" in warnings[1]


def test_an_unreadable_policy_file_is_one_line() -> None:
    ran = authz("validate", "/no/such/policy.yaml")
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1, ran.stderr
    assert ran.stderr.startswith("/no/such/policy.yaml")
