"""`authz replay`: re-decide a decision log under a candidate config; hashed values that
the new outcome depends on make a request not replayable, never guessed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from authz.attributes import from_check_request
from authz.cli import main
from authz.identity.model import Identity
from authz.observability.decision_log import ALWAYS_MASKED, DecisionLog, LogOptions
from authz.observability.replay_record import Hasher, claim_reads, record
from authz.request_file import to_check_request
from authz.schema import REGISTRY
from authz.service import Checker
from tests.support import tokens
from tests.unit.helpers import compile_policy, write_policy

OLD = """
policies:
  - name: team
    rules:
      - {name: ml, when: 'request.headers["x-team"] == "ml"', effect: allow}
  - name: token
    rules:
      - {name: bearer, when: '"authorization" in request.headers', effect: allow}
  - name: body
    rules:
      - {name: short, when: 'size(body.text) < 100', effect: allow}
"""
NEW = OLD.replace(
    'request.headers["x-team"] == "ml"', 'request.headers["x-team"] in ["ml", "sales"]'
)


def logged(tmp_path: Path) -> str:
    """Decision lines with replay records for a few requests under OLD."""
    stream = io.StringIO()
    log = DecisionLog(stream, LogOptions(replay=True, masked_headers=ALWAYS_MASKED))
    checker = Checker(compile_policy(tmp_path, OLD, "cel-cpp"), log=log)
    for request in (
        {"path": "/t", "headers": {"x-team": "ml"}, "context": {"policy": "team"}},
        {"path": "/t", "headers": {"x-team": "sales"}, "context": {"policy": "team"}},
        {
            "path": "/t",
            "headers": {"authorization": "Bearer s3cr3t"},
            "context": {"policy": "token"},
        },
        {
            "method": "POST",
            "path": "/b",
            "body": "mail me: jane@example.org",
            "context": {"policy": "body"},
        },
    ):
        checker.check(to_check_request(request))
    return stream.getvalue()


def test_records_keep_secrets_hashed(tmp_path: Path) -> None:
    lines = [json.loads(x) for x in logged(tmp_path).splitlines()]
    token = lines[2]["replay"]["request"]["headers"]["authorization"]
    assert token.startswith("hashed:") and "s3cr3t" not in json.dumps(lines)
    assert lines[3]["replay"]["request"]["body"].startswith("hashed:")
    assert "jane@example.org" not in json.dumps(lines)
    assert lines[1]["replay"]["request"]["headers"]["x-team"] == "sales"


def test_replay_reports_what_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "decisions.jsonl"
    log.write_text(logged(tmp_path) + "not json\n")
    candidate = write_policy(tmp_path, NEW, "new.yaml")
    assert main(["replay", "--config", str(candidate), str(log)]) == 0
    out = capsys.readouterr().out
    assert "replayed 4 requests (1 log lines without a record)" in out
    assert "  allow -> allow: 1" in out and "  deny -> allow: 1" in out
    assert "  team/None -> team/ml: 1" in out
    assert "not replayable (the outcome depends on a hashed value): 2" in out
    assert "changed: 1; the first 1:" in out
    assert "/t: deny (None) -> allow (ml" in out


def test_a_record_the_candidate_refuses_is_a_deny_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a logged request whose body holds NUL: the candidate reads the body, so it is refused
    record = {
        "decision_id": "d1",
        "decision": "allow",
        "policy": "body",
        "rule": "short",
        "replay": {
            "request": {
                "method": "POST",
                "path": "/b",
                "body": "a\u0000b",
                "headers": {},
                "context": {"policy": "body"},
            },
            "identity": {
                "authenticated": False,
                "method": "anonymous",
                "subject": "",
                "issuer": "",
                "audiences": [],
                "groups": [],
                "scopes": [],
                "claims": {},
                "spiffe_id": "",
                "trust_domain": "",
                "api_key": "",
                "expires_at": 0,
                "error": "",
            },
        },
    }
    log = tmp_path / "decisions.jsonl"
    log.write_text(json.dumps(record) + "\n")
    candidate = write_policy(tmp_path, NEW, "new.yaml")
    assert main(["replay", "--config", str(candidate), str(log)]) == 0
    out = capsys.readouterr().out
    assert "  allow -> deny: 1" in out
    assert "/b: allow (short) -> deny (None: malformed request: body holds a NUL" in out


IDENTITY_OLD = """
identity:
  jwt:
    - {issuer: https://idp.example.com, audiences: [llm-gateway], jwks_file: jwks.json}
policies:
  - name: api
    rules:
      - name: members
        when: identity.authenticated && identity.claims.tier != "banned"
        effect: allow
        metadata: {tier: identity.claims.tier, who: identity.subject}
"""
# The candidate refuses the free tier: it reads the same claim, so it replays.
IDENTITY_NEW = IDENTITY_OLD.replace(
    'identity.claims.tier != "banned"', 'identity.claims.tier == "gold"'
)
# This candidate reads a claim the loaded policy never read: kept hashed, so not replayable.
READS_ORG = IDENTITY_OLD.replace(
    'identity.claims.tier != "banned"', 'identity.claims.org == "acme"'
)


def identity_log(tmp_path: Path, policy: str = IDENTITY_OLD, **claims: object) -> list[dict]:
    """Decision lines (with replay records) for tokens with these claims under `policy`."""
    key = tokens.rsa_key()
    (tmp_path / "jwks.json").write_text(json.dumps(tokens.jwks(key)))
    stream = io.StringIO()
    log = DecisionLog(stream, LogOptions(replay=True, masked_headers=ALWAYS_MASKED))
    checker = Checker(compile_policy(tmp_path, policy, "cel-cpp"), log=log)
    for tier in ("gold", "free"):
        token = tokens.mint(key, tier=tier, org="acme", email="jane@example.org", **claims)
        checker.check(
            to_check_request(
                {"headers": {"authorization": f"Bearer {token}"}, "context": {"policy": "api"}}
            )
        )
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_claims_the_policies_read_are_kept_in_clear(tmp_path: Path) -> None:
    lines = identity_log(tmp_path)
    identity = lines[0]["replay"]["identity"]
    assert identity["claims"]["tier"] == "gold" and identity["subject"] == "agent-7"
    assert identity["authenticated"] is True and identity["method"] == "jwt"
    # claims no loaded policy reads, and personal data whatever reads it, stay hashed
    assert identity["claims"]["org"].startswith("hashed:")
    assert identity["claims"]["email"].startswith("hashed:")
    assert identity["groups"].startswith("hashed:")  # no policy reads identity.groups
    assert "jane@example.org" not in json.dumps(lines)


def test_a_candidate_reading_a_logged_claim_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "decisions.jsonl"
    log.write_text("\n".join(json.dumps(line) for line in identity_log(tmp_path)) + "\n")
    candidate = write_policy(tmp_path, IDENTITY_NEW, "new.yaml")
    assert main(["replay", "--config", str(candidate), str(log)]) == 0
    out = capsys.readouterr().out
    assert "replayed 2 requests" in out and "not replayable" not in out
    assert "  allow -> allow: 1" in out and "  allow -> deny: 1" in out
    other = write_policy(tmp_path, READS_ORG, "org.yaml")
    assert main(["replay", "--config", str(other), str(log)]) == 0
    assert "not replayable (the outcome depends on a hashed value): 2" in capsys.readouterr().out


def test_an_identity_never_resolved_is_not_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the loaded policies never read identity: the record cannot say who called
    log = tmp_path / "decisions.jsonl"
    log.write_text(logged(tmp_path))
    candidate = write_policy(
        tmp_path,
        OLD.replace('request.headers["x-team"] == "ml"', "identity.authenticated"),
        "new.yaml",
    )
    assert main(["replay", "--config", str(candidate), str(log)]) == 0
    # the two team requests (identity never resolved) join the two whose secrets were hashed
    assert "not replayable (the outcome depends on a hashed value): 4" in capsys.readouterr().out


def test_which_claims_an_expression_reads() -> None:
    assert claim_reads(['identity.claims.tier == "a"', '"org" in identity.claims']) == {
        "tier",
        "org",
    }
    assert claim_reads(['identity.claims["x-y"] == 1', "has(identity.claims.z)"]) == {"x-y", "z"}
    assert claim_reads(["identity.claims.size() > 0"]) is None
    assert claim_reads(["identity.claims[request.path] == 1"]) is None
    assert claim_reads(['identity.subject == "a"']) == frozenset()


def test_the_identity_record_follows_the_registry(tmp_path: Path) -> None:
    """Every identity field the registry declares is in the record; those the registry keeps
    in clear are clear, the rest hashed when no policy reads them (the record reads the
    registry, so a field added there cannot be dropped or leak in clear)."""
    config = compile_policy(tmp_path, OLD, "cel-cpp")  # reads no identity field
    identity = Identity(
        authenticated=True,
        method="jwt",
        subject="agent-7",
        issuer="https://idp",
        audiences=("api",),
        groups=("ml",),
        scopes=("read",),
        spiffe_id="spiffe://td/agent",
        trust_domain="td",
        api_key="key-1",
        expires_at=1,
        error="",
    )
    attrs = from_check_request(to_check_request({"path": "/t"}), config.limits)
    kept = record(attrs.with_identity(identity), ALWAYS_MASKED, Hasher(), config)["identity"]
    root = REGISTRY["identity"]
    assert set(kept) == set(root.type.field_names)
    for name in root.type.field_names:
        if name in ("claims", "error"):
            continue  # claims: per key (tests above); error: empty here, nothing to hash
        hashed = isinstance(kept[name], str) and kept[name].startswith("hashed:")
        assert hashed is (name not in root.replay_clear), name
