"""Why a decision came out as it did (`authz check --explain`, `authz serve --log-explain`).

For the policy that decided, one entry per rule, in order:
`{"rule": NAME, "result": "true" | "false" | "error" | "not_evaluated", "parts": [...]}`.
`parts` are the operands of the rule's top-level `&&`/`||` (and of an `&&` inside a top-level
`||`), and the non-literal sides of each comparison among them (or of the whole condition
when it is one comparison), each `{"expr": TEXT, "value": VALUE}` or `{"expr": TEXT,
"error": MESSAGE}`. Each part is compiled on the engine that decided and evaluated against
the same attribute values, so a part shows what that engine saw. Rules after the one that
decided are `not_evaluated` (first match decides) and carry no parts.

Policy selection is explained the same way: `{"by": "route", "policy": NAME, "result":
"selected" | "unknown"}` when the route names the policy, else `{"by": "match", "policies":
[{"policy", "result", "parts"}, ...]}` for the policies with a `match`, in file order.

Values are shown as the engine returned them; strings longer than 200 characters are cut,
lists and maps whose JSON exceeds 300 characters are summarised, and with `redact` (the
decision log) every string passes through `redact()` first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import lark
from celpy.celparser import CELParseError, CELParser

from authz.attributes import Attributes
from authz.context import RequestContext
from authz.decide import ROUTE_POLICY_KEY, precompute
from authz.decision import DEFAULT, UNAUTHENTICATED, Decision
from authz.detectors import redact as redact_text
from authz.errors import EvaluationError, RequestError
from authz.functions import REQUEST_HANDLE
from authz.policy.compiler import PRECOMPUTED, CompiledConfig, CompiledExpr
from authz.policy.engine import CompileFailure, Program
from authz.policy.references import detector_calls, with_request_handle

TRUE, FALSE, ERROR, NOT_EVALUATED = "true", "false", "error", "not_evaluated"
_MAX_TEXT, _MAX_JSON = 200, 300
# Parse-tree nodes that only wrap their single child.
_WRAPPERS = {
    "expr",
    "conditionalor",
    "conditionaland",
    "relation",
    "addition",
    "multiplication",
    "unary",
    "member",
    "primary",
}
_parser = CELParser()


@dataclass(frozen=True)
class Explanation:
    """How the policy was selected, and each rule of the deciding policy."""

    selection: dict[str, Any]
    rules: list[dict[str, Any]] = field(default_factory=list)


def _core(node: Any) -> Any:
    """The node under single-child wrappers and parentheses."""
    while isinstance(node, lark.Tree):
        single = node.data in _WRAPPERS and len(node.children) == 1
        if not (single or node.data == "paren_expr"):
            break
        node = node.children[0]
    return node


def _chain(node: Any, kind: str) -> list[Any]:
    """The operands of a left-nested `||` (kind conditionalor) or `&&` chain."""
    core = _core(node)
    if isinstance(core, lark.Tree) and core.data == kind and len(core.children) == 2:
        return [*_chain(core.children[0], kind), core.children[1]]
    return [node]


def _comparison_sides(node: Any) -> list[Any]:
    """Both sides of a comparison (`==`, `<`, `in`, ...), literals left out."""
    core = _core(node)
    if not (isinstance(core, lark.Tree) and core.data == "relation" and len(core.children) == 2):
        return []
    operator, right = core.children
    sides = [operator.children[0], right] if isinstance(operator, lark.Tree) else [right]
    return [
        s for s in sides if not (isinstance(_core(s), lark.Tree) and _core(s).data == "literal")
    ]


def part_texts(source: str) -> list[str]:
    """The sub-expressions of a condition worth showing (see the module docstring)."""
    try:
        tree = _parser.parse(source)
    except CELParseError:
        return []
    nodes: list[Any] = []
    operands = _chain(tree, "conditionalor")
    if len(operands) == 1:
        operands = _chain(tree, "conditionaland")
    if len(operands) == 1:
        nodes += _comparison_sides(tree)
    else:
        for operand in operands:
            nodes.append(operand)
            inner = _chain(operand, "conditionaland")
            for sub in inner if len(inner) > 1 else []:
                nodes.append(sub)
                nodes += _comparison_sides(sub)
            if len(inner) == 1:
                nodes += _comparison_sides(operand)
    texts: list[str] = []
    for node in nodes:
        meta = node.meta
        text = source[meta.start_pos : meta.end_pos].strip() if not meta.empty else ""
        if text and text not in texts:
            texts.append(text)
    return texts


class Explainer:
    """Explains decisions; keeps the parts it compiled for the config it last saw."""

    def __init__(self, redact: bool = False) -> None:
        self.redact = redact
        self._config: CompiledConfig | None = None
        self._programs: dict[str, Program | str] = {}

    def explain(self, config: CompiledConfig, attrs: Attributes, decision: Decision) -> Explanation:
        """Re-evaluate what decided `decision` for `attrs`, part by part."""
        if self._config is not config:
            self._config, self._programs = config, {}
        ctx = RequestContext(decision.decision_id, config, attrs)  # alive while explaining
        try:
            bound = _bind(ctx)
        except (RequestError, EvaluationError) as exc:
            return Explanation({"error": f"attributes could not be built: {exc}"})
        selection = self._selection(config, attrs, bound)
        deciding = decision.would_deny or decision
        policy = config.policy_named(deciding.policy or "")
        selected = deciding.rule is not None or deciding.reason in (DEFAULT, UNAUTHENTICATED)
        if policy is None or not selected:  # decided before any policy's rules could run
            return Explanation(selection)
        rules = []
        done = deciding.reason == UNAUTHENTICATED  # the identity was refused first
        for rule in policy.rules:
            if done:
                rules.append({"rule": rule.name, "result": NOT_EVALUATED, "parts": []})
                continue
            result = self._truth(rule.when, bound)
            done = result in (TRUE, ERROR)
            rules.append(
                {"rule": rule.name, "result": result, "parts": self._parts(rule.when, bound)}
            )
        return Explanation(selection, rules)

    def _selection(self, config: CompiledConfig, attrs: Attributes, bound: Any) -> dict[str, Any]:
        named = attrs.context.get(ROUTE_POLICY_KEY)
        if named:
            found = config.policy_named(named) is not None
            return {"by": "route", "policy": named, "result": "selected" if found else "unknown"}
        policies = []
        done = False
        for policy in config.policies:
            if policy.match is None:
                continue
            if done:
                policies.append({"policy": policy.name, "result": NOT_EVALUATED, "parts": []})
                continue
            result = self._truth(policy.match, bound)
            done = result in (TRUE, ERROR)
            entry = {
                "policy": policy.name,
                "result": result,
                "parts": self._parts(policy.match, bound),
            }
            policies.append(entry)
        return {"by": "match", "policies": policies}

    @staticmethod
    def _truth(expr: CompiledExpr, bound: Any) -> str:
        try:
            value = expr.program.evaluate(bound)
        except EvaluationError:
            return ERROR
        if not isinstance(value, bool):
            return ERROR
        return TRUE if value else FALSE

    def _parts(self, expr: CompiledExpr, bound: Any) -> list[dict[str, Any]]:
        out = []
        for text in part_texts(expr.source):
            program = self._program(text)
            if isinstance(program, str):
                out.append({"expr": text, "error": program})
                continue
            try:
                out.append({"expr": text, "value": self._shown(program.evaluate(bound))})
            except EvaluationError as exc:
                out.append({"expr": text, "error": str(exc)})
        return out

    def _program(self, text: str) -> Program | str:
        """The part compiled on the deciding engine (an error message when it does not
        compile alone). Detector calls on attribute paths read the values precomputed for
        the request, as the rules do, so explaining never calls into the C++ runtime's
        Python functions (see compiler._precomputed)."""
        cached = self._programs.get(text)
        if cached is not None:
            return cached
        config = self._config
        assert config is not None
        rewritten = text
        ids = {call: ident for ident, call in (config.calls or {}).items()}
        for call in reversed(detector_calls(text, config.functions.names)):
            ident = ids.get((call.function, call.path))
            if ident is not None:
                rewritten = (
                    f'{rewritten[: call.start]}{PRECOMPUTED}["{ident}"]{rewritten[call.end :]}'
                )
        rewritten = with_request_handle(rewritten, config.functions.names, REQUEST_HANDLE)
        try:
            program: Program | str = config.engine.compile(rewritten)
        except CompileFailure as exc:
            program = f"does not compile alone: {exc.message}"
        self._programs[text] = program
        return program

    def _shown(self, value: Any) -> Any:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            text = redact_text(value) if self.redact else value
            if len(text) > _MAX_TEXT:
                return f"{text[:_MAX_TEXT]}... ({len(text)} characters)"
            return text
        if isinstance(value, dict | list):
            shown: Any = (
                {str(k): self._shown(v) for k, v in sorted(value.items(), key=lambda i: str(i[0]))}
                if isinstance(value, dict)
                else [self._shown(v) for v in value]
            )
            if len(json.dumps(shown, default=str)) > _MAX_JSON:
                what = "map" if isinstance(value, dict) else "list"
                unit = "keys" if isinstance(value, dict) else "items"
                return f"<{what} of {len(value)} {unit}>"
            return shown
        return value


class Recorder:
    """Explains each decision a Checker reports (it stands where the decision log does) and
    keeps the last explanation: what `authz check --explain` prints."""

    def __init__(self) -> None:
        self.explainer = Explainer()
        self.last: Explanation | None = None

    def record(
        self,
        decision: Decision,
        attrs: Attributes | None,
        trace_id: str,
        latency_s: float,
        config: CompiledConfig | None = None,
    ) -> None:
        """Explain the decision just made."""
        if attrs is not None and config is not None:
            self.last = self.explainer.explain(config, attrs, decision)


def _bind(ctx: RequestContext) -> Any:
    """The activation every expression of the config is evaluated against."""
    config, attrs = ctx.config, ctx.attrs
    assert attrs is not None
    variables = attrs.variables(config.reads)
    if any(root == "data" for root, _ in config.reads):
        variables["data"] = config.data
    if config.calls:
        precompute(ctx, frozenset(config.calls), variables)
    return ctx.bind(variables)
