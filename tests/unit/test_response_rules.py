"""`response_rules:` are read, type-checked and refused like `rules`, on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.errors import ConfigError
from authz.policy.compiler import load
from authz.policy.response_rules import DEFAULT_STATUS
from tests.unit.helpers import ENGINES, compile_policy, write_policy

POLICY = """
policies:
  - name: chat
    default: allow
    rules: []
    response_rules:
{rules}
"""


def rules(text: str) -> str:
    """A policy file whose one policy has these response rules (YAML list items)."""
    indented = "\n".join(f"      {line}" for line in text.strip().splitlines())
    return POLICY.format(rules=indented)


def refusal(tmp_path: Path, text: str, engine: str) -> str:
    """The error text `authz validate` would print for this file."""
    with pytest.raises(ConfigError) as caught:
        compile_policy(tmp_path, text, engine)
    return str(caught.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_rules_compile_with_what_judging_needs(tmp_path: Path, engine: str) -> None:
    config = compile_policy(
        tmp_path,
        rules(
            """
- name: no-credentials
  when: secrets(response.llm.text).size() > 0 && request.method == "POST"
  effect: deny
  message: withheld
- name: server-error
  when: response.status >= 500
  effect: deny
  status: 503
- name: clean
  when: pii(response.mcp.text).size() > 0
  effect: redact
- name: usage
  when: response.llm.usage.output_tokens != null
  effect: allow
  response_headers:
    x-usage: 'response.llm.usage.output_tokens != null ? response.llm.usage.output_tokens : 0'
"""
        ),
        engine,
    )
    compiled = config.policies[0].response
    assert compiled is not None
    assert [(r.name, r.effect, r.status) for r in compiled.rules] == [
        ("no-credentials", "deny", DEFAULT_STATUS),
        ("server-error", "deny", 503),
        ("clean", "redact", DEFAULT_STATUS),
        ("usage", "allow", DEFAULT_STATUS),
    ]
    assert compiled.fields == {"llm", "status", "mcp"}
    assert compiled.needs_body
    assert compiled.request_reads == {("request", "method")}
    assert not compiled.unreadable_allow
    # The request's own reads do not include what only response rules read.
    assert not any(root == "response" for root, _ in config.reads)


@pytest.mark.parametrize("engine", ENGINES)
def test_status_and_header_rules_need_no_body(tmp_path: Path, engine: str) -> None:
    text = rules(
        """
- name: upstream-error
  when: response.status >= 500 || response.headers["content-type"] == "text/html"
  effect: deny
"""
    )
    compiled = compile_policy(tmp_path, text, engine).policies[0].response
    assert compiled is not None and not compiled.needs_body
    assert compiled.fields == {"status", "headers"}


def test_redact_needs_the_body_whatever_it_reads(tmp_path: Path) -> None:
    text = rules("- {name: always, when: 'response.status == 200', effect: redact}")
    compiled = compile_policy(tmp_path, text, "cel-cpp").policies[0].response
    assert compiled is not None and compiled.needs_body


def test_a_policy_without_response_rules_has_none(tmp_path: Path) -> None:
    text = "policies: [{name: p, default: allow, rules: []}]"
    assert compile_policy(tmp_path, text, "cel-cpp").policies[0].response is None


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("when", "message"),
    [
        ('response.status == "200"', "'==' compares int with string"),
        ('response.llm.usage.output_tokens > "3"', "'>' cannot order int or null and string"),
        ("response.llm.text", "must be a bool, not string"),
        ("response.llm.txt == ''", "'response.llm' has no field 'txt' (did you mean 'text'?)"),
        ("response.mcp.is_error == 'true'", "'==' compares bool with string"),
        (
            "body.text == 'x'",
            "response rules cannot read 'body': Envoy does not send the request body",
        ),
        ("llm.model == 'x'", "response rules cannot read 'llm'"),
        ("source.address == 'x'", "response rules cannot read 'source'"),
        ("context.policy == 'x'", "response rules cannot read 'context'"),
    ],
)
def test_ill_typed_response_rules_are_refused(
    tmp_path: Path, engine: str, when: str, message: str
) -> None:
    text = rules(f"- name: r\n  when: {when!r}\n  effect: deny")
    error = refusal(tmp_path, text, engine)
    assert message in error
    assert "policy.yaml:7:" in error  # the file, the `when` line, a column


@pytest.mark.parametrize("engine", ENGINES)
def test_a_request_rule_cannot_read_the_response(tmp_path: Path, engine: str) -> None:
    text = """
    policies:
      - name: p
        rules:
          - {name: r, when: 'request.path == "/" && response.status == 200', effect: allow}
    """
    error = refusal(tmp_path, text, engine)
    assert "'response' is read only by response_rules" in error
    assert "policy.yaml:4:49:" in error  # the caret is under `response`


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- {name: r, when: 'true', effect: redact, status: 500}",
            "status applies only to a deny (this rule is redact)",
        ),
        (
            "- {name: r, when: 'true', effect: allow, headers: {x: '\"y\"'}}",
            "unknown key 'headers' in response rule",
        ),
        ("- {name: r, when: 'true', effect: pass}", "must be one of: allow, deny, redact"),
        (
            "- {name: r, when: 'true', effect: deny}\n- {name: r, when: 'true', effect: allow}",
            "duplicate response rule name 'r'",
        ),
        (
            "- {name: r, when: 'true', effect: allow, response_headers: {'bad name': '\"v\"'}}",
            "invalid header name 'bad name'",
        ),
    ],
)
def test_malformed_response_rules_are_refused(tmp_path: Path, text: str, message: str) -> None:
    assert message in refusal(tmp_path, rules(text), "cel-cpp")


def test_on_unreadable_is_deny_or_allow(tmp_path: Path) -> None:
    base = (
        "policies: [{name: p, rules: [], on_unreadable: %s,"
        " response_rules: [{name: r, when: 'true', effect: redact}]}]"
    )
    assert "on_unreadable must be one of: deny, allow" in refusal(
        tmp_path, base % "maybe", "cel-cpp"
    )
    compiled = load(str(write_policy(tmp_path, base % "allow")), "cel-cpp").policies[0].response
    assert compiled is not None and compiled.unreadable_allow


def test_the_example_policies_carry_response_rules() -> None:
    config = load("deploy/envoy/policies/example.yaml", "cel-cpp")
    external = config.policy_named("llm-external")
    mcp = config.policy_named("mcp")
    assert external is not None and external.response is not None
    assert [r.name for r in external.response.rules] == [
        "credential-in-answer",
        "personal-data-in-answer",
        "usage",
    ]
    assert mcp is not None and mcp.response is not None and mcp.response.needs_body
    public = config.policy_named("public")
    assert public is not None and public.response is None
