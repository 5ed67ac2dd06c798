"""`response_rules:` of a policy: read from the file, then compiled and type-checked like
`rules`, against the request's roots plus `response` (schema.py).

```yaml
response_rules:                  # first match decides; no match: the response passes
  - name: no-credentials
    when: size(secrets(response.llm.text)) > 0
    effect: deny                 # allow | deny | redact
    status: 502                  # deny only; default 502
    message: the answer held a credential
  - name: usage
    when: response.llm.usage.output_tokens != null
    effect: allow
    response_headers: {x-usage-output-tokens: 'response.llm.usage.output_tokens'}
on_unreadable: deny              # deny | allow: a response the service cannot read
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authz.config.model import ALLOW, DENY, Policy, ResponseRule
from authz.config.source import Located
from authz.policy.references import Read, analyse
from authz.schema import NOT_IN_RESPONSE_RULES, RESPONSE_TYPE

if TYPE_CHECKING:
    from authz.policy.compiler import CompiledExpr

REDACT = "redact"
EFFECTS = (ALLOW, DENY, REDACT)
DEFAULT_STATUS = 502
RESPONSE_RULE_KEYS = {"name", "when", "effect", "status", "message", "response_headers"}
# Response fields that need the body (anything but status and headers).
_BODY_FIELDS = frozenset({"body", "llm", "mcp"})


def read_response_rules(reader: Any, raw: Any, where: Any) -> tuple[ResponseRule, ...]:
    """The `response_rules:` list of a policy; issues go to the loader's reader."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        reader.issue(where, "response_rules must be a list")
        return ()
    rules: list[ResponseRule] = []
    for item in raw:
        data = reader.mapping(item, where, "response rule", RESPONSE_RULE_KEYS)
        name = reader.text(data.get("name"), where, "response rule name")
        at = name or where
        when = reader.text(data.get("when"), at, "response rule 'when'")
        effect = reader.choice(data.get("effect"), at, "response rule effect", EFFECTS)
        status_key = reader.key(data, "status", at)
        status = reader.status(data.get("status"), status_key, "status")
        if status is not None and effect in (ALLOW, REDACT):
            reader.issue(status_key, f"status applies only to a deny (this rule is {effect})")
        message = data.get("message")
        if message is not None and not isinstance(message, str):
            reader.issue(at, "message must be a string")
            message = None
        headers = reader.expressions(data.get("response_headers"), at, "response_headers", True)
        if name and when and effect:
            rules.append(ResponseRule(name, when, effect, status, message, headers))
    reader.unique([r.name for r in rules], "response rule name")
    return tuple(rules)


@dataclass(frozen=True)
class CompiledResponseRule:
    """A response rule whose expressions are compiled."""

    name: str
    when: CompiledExpr
    effect: str
    status: int
    message: str | None
    response_headers: tuple[tuple[str, CompiledExpr], ...]


@dataclass(frozen=True)
class ResponseRules:
    """A policy's compiled response rules and what judging them needs.

    `fields` are the `response` fields the rules read (None: the whole value); `request`
    the request roots they read (rebuilt from the ext_proc stream's request headers and
    forwarded metadata); `needs_body` says whether Envoy must send the body at all (a rule
    reads it, or redacts it), so a policy that reads only the status and headers never has
    a body buffered."""

    rules: tuple[CompiledResponseRule, ...]
    reads: frozenset[Read]
    fields: frozenset[str] | None
    calls: frozenset[str]
    needs_body: bool
    unreadable_allow: bool

    @property
    def request_reads(self) -> frozenset[Read]:
        """The request roots the rules read."""
        return frozenset(r for r in self.reads if r[0] not in ("response", "data"))

    @property
    def reads_data(self) -> bool:
        """Whether some rule reads `data`."""
        return any(root == "data" for root, _ in self.reads)


def root_position(source: str, root: str) -> tuple[int, int]:
    """Where `root` is first named in the expression (1-based), for the error caret."""
    found = re.search(rf"(?<![\w.]){re.escape(root)}\b", source)
    if found is None:
        return 1, 1
    before = source[: found.start()]
    return before.count("\n") + 1, found.start() - (before.rfind("\n") + 1) + 1


def _expr(compiler: Any, source: Located, what: str, wants: str) -> CompiledExpr | None:
    """Compile one expression against the response-phase roots; roots the ext_proc stream
    does not carry are refused with the reason."""
    misplaced = sorted({root for root, _ in analyse(source).reads} & NOT_IN_RESPONSE_RULES.keys())
    for root in misplaced:
        line, col = root_position(source, root)
        compiler._report(source, line, col, f"{what}: {NOT_IN_RESPONSE_RULES[root]}")
    if misplaced:
        return None
    env = {k: v for k, v in compiler.env.items() if k not in NOT_IN_RESPONSE_RULES}
    return compiler.expr(source, what, wants, env={**env, "response": RESPONSE_TYPE})


def compile_response_rules(compiler: Any, policy: Policy) -> ResponseRules | None:
    """Compile a policy's response rules with the config's compiler (its engine, its
    function library and its precomputed detector calls); None when it has none."""
    if not policy.response_rules:
        return None
    rules: list[CompiledResponseRule] = []
    exprs: list[CompiledExpr] = []
    for rule in policy.response_rules:
        where = f"response rule '{policy.name}/{rule.name}'"
        when = _expr(compiler, rule.when, f"{where} when", "bool")
        headers = []
        for name, source in rule.response_headers.items():
            compiled = _expr(compiler, source, f"{where} response header '{name}'", "header")
            if compiled is not None:
                headers.append((name, compiled))
        if when is None:
            continue
        exprs += [when, *(e for _, e in headers)]
        rules.append(
            CompiledResponseRule(
                name=str(rule.name),
                when=when,
                effect=rule.effect,
                status=rule.status or DEFAULT_STATUS,
                message=rule.message,
                response_headers=tuple(headers),
            )
        )
    reads = frozenset(r for e in exprs for r in e.reads)
    fields: frozenset[str] | None = frozenset(f for root, f in reads if root == "response" and f)
    if ("response", None) in reads:
        fields = None
    needs_body = fields is None or bool(fields & _BODY_FIELDS)
    needs_body = needs_body or any(r.effect == REDACT for r in rules)
    return ResponseRules(
        rules=tuple(rules),
        reads=reads,
        fields=fields,
        calls=frozenset(c for e in exprs for c in e.calls),
        needs_body=needs_body,
        unreadable_allow=policy.on_unreadable == ALLOW,
    )
