"""CheckRequest -> attributes: the contract fields, and hostile input that must stay bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authz._proto.envoy.service.auth.v3 import external_auth_pb2
from authz.attributes import from_check_request
from authz.body import parse_json
from authz.config.model import Limits
from authz.decision import REQUEST_ERROR
from authz.errors import RequestError
from authz.request_file import to_check_request
from authz.service import check
from tests.unit.helpers import ENGINES, compile_policy

LIMITS = Limits()


def attrs_for(request: dict) -> dict:
    """Every attribute, as CEL would see it."""
    built = from_check_request(to_check_request(request), LIMITS)
    reads = frozenset(
        {
            (root, None)
            for root in ("request", "source", "destination", "metadata", "body", "identity")
        }
    )
    return built.variables(reads)


def test_request_fields_follow_the_contract() -> None:
    got = attrs_for(
        {
            "method": "post",
            "path": "/v1/chat//x?a=1&a=2&b=#frag",
            "host": "api.example",
            "headers": {"X-Team": "ml"},
            "id": "rid-1",
            "source": {"address": "10.0.0.1", "port": 5555, "principal": "spiffe://t/a"},
            "context": {"policy": "chat"},
            "metadata": {"ns": {"k": "v", "n": 2}},
        }
    )
    request = got["request"]
    assert request["method"] == "POST"
    assert request["path"] == "/v1/chat//x"
    assert request["query"] == {"a": ["1", "2"], "b": [""]}
    assert request["path_segments"] == ["v1", "chat", "x"]
    assert request["headers"]["x-team"] == "ml"
    assert (request["host"], request["id"], request["scheme"]) == ("api.example", "rid-1", "http")
    assert got["source"] == {"address": "10.0.0.1", "port": 5555, "principal": "spiffe://t/a"}
    assert got["context"] == {"policy": "chat"}
    assert got["metadata"] == {"ns": {"k": "v", "n": 2.0}}
    assert got["identity"]["authenticated"] is False
    assert got["identity"]["method"] == "anonymous"


def test_body_json_and_error() -> None:
    ok = attrs_for({"method": "POST", "body": {"a": [1, 2]}})["body"]
    assert ok["json"] == {"a": [1, 2]} and ok["error"] is None
    assert ok["content_type"] == "application/json" and ok["truncated"] is False
    bad = attrs_for({"method": "POST", "body": "{nope"})["body"]
    assert bad["json"] is None and bad["error"].startswith("invalid JSON at line 1 column 2")
    assert bad["text"] == "{nope" and bad["size"] == 5
    empty = attrs_for({})["body"]
    assert empty["json"] is None and empty["error"] is None and empty["size"] == 0


def test_truncated_when_envoy_says_partial_or_length_exceeds() -> None:
    partial = attrs_for({"body": "abc", "headers": {"x-envoy-auth-partial-body": "true"}})
    assert partial["body"]["truncated"] is True
    longer = attrs_for({"body": "abc", "headers": {"content-length": "100000"}})
    assert longer["body"]["truncated"] is True


def test_truncated_when_the_body_reaches_envoys_buffer_limit() -> None:
    # A chunked body cut at exactly max_request_bytes comes with partial-body "false" and no
    # content-length: only the configured limit tells that it may be incomplete.
    limits = Limits(envoy_max_request_bytes=8)
    said_whole = {"x-envoy-auth-partial-body": "false"}
    for size, truncated in ((7, False), (8, True)):
        request = to_check_request({"method": "POST", "body": "x" * size, "headers": said_whole})
        request.attributes.request.http.headers.pop("content-length", None)
        body = from_check_request(request, limits).variables(frozenset({("body", None)}))["body"]
        assert (body["size"], body["truncated"]) == (size, truncated)
    unset = to_check_request({"method": "POST", "body": "x" * 8, "headers": said_whole})
    unset.attributes.request.http.headers.pop("content-length", None)
    assert from_check_request(unset, LIMITS).body.truncated is False


def test_only_read_roots_are_built() -> None:
    built = from_check_request(to_check_request({"body": {"a": 1}}), LIMITS)
    variables = built.variables(frozenset({("request", "path")}))
    assert set(variables) == {"request", "context"}
    assert "parsed" not in built.body.__dict__  # the body was never parsed


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "nested deeper than 64"),
        (b"[" * 100 + b"]" * 100, "nested deeper than 64"),
        (b'{"a": "\xff\xfe"}', "not valid UTF-8"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": 1', "invalid JSON"),
        (b"x" * (2 << 20), "exceeds max_body_bytes"),
    ],
)
def test_hostile_json_is_refused_with_a_reason(raw: bytes, error: str) -> None:
    parsed = parse_json(raw, LIMITS)
    assert parsed.value is None and error in (parsed.error or "")


def test_large_but_legal_json_parses() -> None:
    many = json.dumps({f"k{i}": i for i in range(50_000)}).encode()
    parsed = parse_json(many, LIMITS)
    assert parsed.error is None and len(parsed.value) == 50_000
    huge = parse_json(b'{"n": 123456789012345678901234567890, "d": 1e999}', LIMITS)
    assert huge.value == {"n": 1.2345678901234568e29, "d": float("inf")}


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"a": 1, "a": 2}', 'duplicate key "a" at $'),
        (
            b'{"messages": [{"role": "user", "name": "x", "name": "y"}]}',
            'duplicate key "name" at $.messages[0]',
        ),
        (b'{"x": {"a b": [0, {"k": 1, "k": {}}]}}', 'duplicate key "k" at $.x["a b"][1]'),
        (b'[{"ok": 1}, {"\\u0061": 1, "a": 2}]', 'duplicate key "a" at $[1]'),
    ],
)
def test_duplicate_keys_anywhere_make_the_body_malformed(raw: bytes, error: str) -> None:
    # upstreams disagree on which value wins (first, last, or an error): no one meaning
    parsed = parse_json(raw, LIMITS)
    assert (parsed.value, parsed.error) == (None, error)


@pytest.mark.parametrize(
    "raw",
    [b'{"s": "\\ud800"}', b'{"\\uDFFF": 1}', b'["a\\ud83d"]', b'["\\ude00\\ud83d"]'],
)
def test_a_lone_surrogate_escape_is_refused(raw: bytes) -> None:
    parsed = parse_json(raw, LIMITS)
    assert (parsed.value, parsed.error) == (None, "body holds an unpaired UTF-16 surrogate")
    built = from_check_request(to_check_request({"method": "POST", "body": raw.decode()}), LIMITS)
    for root in ("body", "llm", "mcp"):
        with pytest.raises(RequestError, match="unpaired UTF-16 surrogate"):
            built.variables(frozenset({(root, None)}))


def test_paired_surrogates_and_escaped_backslashes_are_text() -> None:
    assert parse_json(b'{"s": "\\ud83d\\ude00"}', LIMITS).value == {"s": "\U0001f600"}
    assert parse_json(b'{"s": "\\\\ud800"}', LIMITS).value == {"s": "\\ud800"}


def test_too_many_query_fields_is_a_request_error() -> None:
    query = "&".join(f"k{i}=v" for i in range(2000))
    with pytest.raises(RequestError, match="more than 1000 fields"):
        from_check_request(to_check_request({"path": f"/x?{query}"}), LIMITS)


@pytest.mark.parametrize("engine", ENGINES)
def test_hostile_requests_end_in_decisions(tmp_path: Path, engine: str) -> None:
    config = compile_policy(
        tmp_path,
        """
        policies:
          - name: p
            match: "true"
            rules:
              - name: json-ok
                when: body.json != null && size(body.json) < 10
                effect: allow
    """,
        engine,
    )
    hostile = [
        {"body": "[" * 10_000 + "]" * 10_000},
        {"body": json.dumps({f"k{i}": i for i in range(100_000)})},
        {"headers": {f"h{i}": "v" * 100 for i in range(2000)}},
        {"path": "/x?" + "&".join(f"k{i}=v" for i in range(5000))},
    ]
    for request in hostile:
        decision = check(config, to_check_request(request))
        assert not decision.allowed and decision.message
    invalid = to_check_request({"body": "x"})
    invalid.attributes.request.http.raw_body = b'{"a": "\xff"}'
    assert not check(config, invalid).allowed
    parse_error = check(config, to_check_request({"path": "/?" + "a=1&" * 1500}))
    assert (parse_error.reason, parse_error.status) == (REQUEST_ERROR, 400)


def test_empty_check_request_is_denied(tmp_path: Path) -> None:
    config = compile_policy(
        tmp_path,
        """
        policies:
          - name: p
            match: request.path == "/"
            rules: [{name: r, when: "true", effect: allow}]
    """,
        "cel-cpp",
    )
    decision = check(config, external_auth_pb2.CheckRequest())
    assert not decision.allowed and decision.reason == "no_policy"
