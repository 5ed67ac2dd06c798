"""Compile every CEL expression of a config once, at load, reporting all errors together."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from authz import tokens
from authz.cache import DecisionCache, key_paths
from authz.celtypes import DOUBLE, STRING, CelType, list_of, non_null, of_value
from authz.config.model import ALLOW, Config, Limits, Policy, Rule
from authz.config.source import Located
from authz.errors import ConfigError, ConfigIssue
from authz.functions import REQUEST_HANDLE, FunctionLibrary
from authz.identity.resolver import IdentityResolver
from authz.policy.checker import check
from authz.policy.engine import CompileFailure, Engine, Program, make_engine
from authz.policy.loader import load_config
from authz.policy.references import Read, analyse, detector_calls, with_request_handle
from authz.policy.response_rules import ResponseRules, compile_response_rules, root_position
from authz.schema import NOT_IN_REQUEST_RULES, ROOT_TYPES, ROOTS

PRECOMPUTED = "_fn"  # the variable holding precomputed detector results

# The CEL type of what each kind of project function returns (functions.CelFunction.returns).
RESULT_TYPES: dict[str, CelType] = {"list": list_of(STRING), "string": STRING, "double": DOUBLE}

_HEADER_KINDS = frozenset({"string", "int", "uint", "double", "bool", "dyn"})
_METADATA_KINDS = _HEADER_KINDS | {"list", "map", "record", "null"}


def _wrong_result(result: CelType, wants: str) -> str:
    """Why an expression's type does not fit where it is used ('' when it fits)."""
    kind = non_null(result).kind
    if wants == "bool" and kind not in ("bool", "dyn"):
        return "must be a bool"
    if wants == "header" and kind not in _HEADER_KINDS:
        return "must be a string (or a number or bool, which are converted)"
    if wants == "metadata" and kind not in _METADATA_KINDS:
        return "must be a string, number, bool, list or map"
    return ""


@dataclass(frozen=True)
class CompiledExpr:
    """An expression ready to evaluate, with its source and what it reads."""

    source: str
    program: Program
    reads: frozenset[Read]
    header_keys: frozenset[str] = frozenset()
    all_headers: bool = False
    calls: frozenset[str] = frozenset()  # precomputed detector results it reads (_fn)
    text: str = ""  # what was compiled: the source, with precomputed calls as _fn reads


@dataclass(frozen=True)
class CompiledRule:
    """A rule whose expressions are compiled."""

    name: str
    when: CompiledExpr
    allow: bool
    status: int | None
    message: str | None
    headers: tuple[tuple[str, CompiledExpr], ...]
    remove_headers: tuple[str, ...]
    response_headers: tuple[tuple[str, CompiledExpr], ...]
    metadata: tuple[tuple[str, CompiledExpr], ...]
    deny_as: str | None = None  # None: the policy's (authz/jsonrpc.py)
    jsonrpc_code: int | None = None  # None: jsonrpc.DEFAULT_CODE
    insufficient_scope: tuple[str, ...] = ()  # a 403 with the RFC 6750 3.1 challenge


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy ready to evaluate."""

    name: str
    match: CompiledExpr | None
    rules: tuple[CompiledRule, ...]
    default_allow: bool
    default_status: int
    require_identity: bool = False
    dry_run: bool = False
    dry_run_header: str = ""
    cache_paths: tuple[tuple[str, ...], ...] = ()
    calls: frozenset[str] = frozenset()
    reads: frozenset[Read] = frozenset()  # what its own expressions read
    response: ResponseRules | None = None  # its response_rules (authz/response_path/)
    # One program for all its rules: the index of the first whose `when` is true, -1 if
    # none. One engine call per decision instead of one per rule; when it fails (a rule
    # errs, or is not a bool) the rules run one by one, which names the rule.
    first: Program | None = None
    deny_as: str = "http"  # how a rule's deny reaches the client (authz/jsonrpc.py)


@dataclass(frozen=True)
class CompiledConfig:
    """Everything a Check needs: the engine, policies in order, and the union of reads."""

    path: str
    engine: Engine
    policies: tuple[CompiledPolicy, ...]
    reads: frozenset[Read]
    limits: Limits
    identity: IdentityResolver
    needs_identity: bool
    functions: FunctionLibrary
    data: dict[str, Any]
    cache: DecisionCache | None = None
    calls: dict[str, tuple[str, tuple[str | int, ...]]] | None = None
    match_calls: frozenset[str] = frozenset()
    live_calls: bool = False  # some expression calls a detector on a computed argument
    files: tuple[str, ...] = ()  # the policy file and every file it names (for reload)
    deny_body: tuple[str, ...] = ()  # record fields a deny body shows (config opt-in)

    @property
    def parses_body(self) -> bool:
        """Whether some expression needs the body parsed (JSON, or the llm / mcp views)."""
        return any(
            root in ("llm", "mcp") or (root == "body" and field in (None, "json", "error"))
            for root, field in self.reads
        )

    def close(self) -> None:
        """Stop the threads this config started (key fetches, introspection calls, model
        scoring); a check still holding it then uses the keys it has, or denies."""
        self.identity.close()
        if self.functions.model is not None:
            self.functions.model.close()

    def policy_named(self, name: str) -> CompiledPolicy | None:
        """The policy a route selects by its context extension `policy`."""
        return next((p for p in self.policies if p.name == name), None)


def snippet(expression: str, line: int, col: int) -> str:
    """The expression line with a caret under the column."""
    lines = expression.splitlines() or [""]
    text = lines[min(max(line, 1), len(lines)) - 1]
    return f"  | {text}\n  | {' ' * max(col - 1, 0)}^"


class _Compiler:
    def __init__(self, config: Config, engine: Engine, library: FunctionLibrary) -> None:
        self.config = config
        self.engine = engine
        self.function_names = library.names
        self.function_types = {f.name: RESULT_TYPES[f.returns] for f in library.functions}
        self.unconfigured = library.unconfigured  # functions the config did not set up
        self.env = {**ROOT_TYPES, "data": of_value(config.data)}
        self.issues: list[ConfigIssue] = []
        self.calls: dict[str, tuple[str, tuple[str | int, ...]]] = {}
        # One id per distinct (function, path): `a.b` and `["a.b"]` are different paths.
        self._call_ids: dict[tuple[str, tuple[str | int, ...]], str] = {}
        self.live_calls = False  # some call stays a call (binds REQUEST_HANDLE per request)
        self.called: set[str] = set()  # the project functions some expression calls

    def expr(
        self, source: Located, what: str, wants: str = "", env: dict[str, CelType] | None = None
    ) -> CompiledExpr | None:
        """Check and compile one expression; `wants` is what its value must be: "bool" for
        `when` and `match`, "header" for header values, "metadata" for metadata values.
        `env`: the roots it may read (default: the request's; response rules add theirs)."""
        analysis = analyse(source)
        if analysis.problems or analysis.tree is None:
            for problem in analysis.problems:
                self._report(source, problem.line, problem.col, f"{what}: {problem.message}")
            return None
        if self._unconfigured_calls(source, analysis.tree, what):
            return None
        if env is None and any(root == "response" for root, _ in analysis.reads):
            line, col = root_position(source, "response")
            self._report(source, line, col, f"{what}: {NOT_IN_REQUEST_RULES}")
            return None
        result, problems = check(analysis.tree, env or self.env, self.function_types)
        for problem in problems:
            self._report(source, problem.line, problem.col, f"{what}: {problem.message}")
        if problems:
            return None
        wrong = _wrong_result(result, wants)
        if wrong:
            self._report(source, 1, 1, f"{what}: {wrong}, not {result}")
            return None
        if wants == "header" and result.nullable and result.kind != "dyn":
            fallback = f'{source} != null ? {source} : ""'
            self._report(source, 1, 1, f"{what}: may be null; give a fallback: {fallback}")
            return None
        try:
            program = self.engine.compile(source)
        except CompileFailure as exc:
            self._report(source, exc.line, exc.col, f"{what}: {exc.message}")
            return None
        program, calls, text = self._precomputed(source, program)
        live = with_request_handle(text, self.function_names, REQUEST_HANDLE)
        if live != text:  # calls on computed arguments: they name the request's memo
            try:
                program, text = self.engine.compile(live), live
            except CompileFailure as exc:
                self._report(source, exc.line, exc.col, f"{what}: {exc.message}")
                return None
            self.live_calls = True
            self.called |= {n for n in self.function_names if re.search(rf"\b{n}\s*\(", text)}
        self.called |= {self.calls[ident][0] for ident in calls}
        return CompiledExpr(
            str(source),
            program,
            frozenset(analysis.reads),
            frozenset(analysis.header_keys),
            analysis.all_headers,
            calls,
            text,
        )

    def first_true(self, rules: tuple[CompiledRule, ...]) -> Program | None:
        """The rules' conditions as one program, `(r0) ? 0 : (r1) ? 1 : ... : -1`: CEL's
        conditional evaluates its condition first and only the branch taken, so it reads
        exactly what the rules read one by one, in order, and stops at the first true one.
        None for fewer than two rules, or when the whole does not compile."""
        if len(rules) < 2 or any(not rule.when.text for rule in rules):
            return None
        text = "-1"
        for index in reversed(range(len(rules))):
            text = f"({rules[index].when.text}) ? {index} : ({text})"
        try:
            return self.engine.compile(text)
        except CompileFailure:
            return None

    def _unconfigured_calls(self, source: Located, tree: Any, what: str) -> bool:
        """Report each call of a function the config did not set up (injection_model()
        without a `detectors.injection_model` section); True when there was one."""
        if not any(name in source for name in self.unconfigured):
            return False
        found = False
        for node in tree.iter_subtrees():
            name = node.children[0] if node.data == "ident_arg" and node.children else None
            if name is not None and str(name) in self.unconfigured:
                line, col = getattr(name, "line", 1), getattr(name, "column", 1)
                self._report(source, line, col, f"{what}: {self.unconfigured[str(name)]}")
                found = True
        return found

    def _precomputed(self, source: str, program: Program) -> tuple[Program, frozenset[str], str]:
        """Rewrite `secrets(llm.prompt_text)` and the like as reads of `_fn[...]`, computed
        once per request in Python: cel-expr-python 0.1.3 leaks each argument it passes to a
        Python function (`make bench`). Calls on computed arguments stay calls."""
        if not any(name in source for name in self.function_names):
            return program, frozenset(), str(source)
        calls = detector_calls(source, self.function_names)
        if not calls:
            return program, frozenset(), str(source)
        rewritten, ids = source, set()
        for call in reversed(calls):
            ident = self._call_ids.setdefault((call.function, call.path), f"c{len(self._call_ids)}")
            self.calls[ident] = (call.function, call.path)
            ids.add(ident)
            rewritten = f'{rewritten[: call.start]}_fn["{ident}"]{rewritten[call.end :]}'
        try:
            return self.engine.compile(rewritten), frozenset(ids), rewritten
        except CompileFailure:
            return program, frozenset(), str(source)

    def _report(self, source: Located, line: int, col: int, message: str) -> None:
        file_line, file_col = source.expression_position(line, col)
        self.issues.append(
            ConfigIssue(
                self.config.source.name, file_line, file_col, message, snippet(source, line, col)
            )
        )

    def values(self, items: dict[str, Located], what: str, wants: str) -> tuple:
        out = []
        for key, source in items.items():
            compiled = self.expr(source, f"{what} '{key}'", wants)
            if compiled is not None:
                out.append((key, compiled))
        return tuple(out)

    def rule(self, rule: Rule, policy: str) -> CompiledRule | None:
        where = f"rule '{policy}/{rule.name}'"
        when = self.expr(rule.when, f"{where} when", "bool")
        compiled = CompiledRule(
            name=str(rule.name),
            when=when,  # type: ignore[arg-type]
            allow=rule.effect == ALLOW,
            status=rule.status,
            message=rule.message,
            headers=self.values(rule.headers, f"{where} header", "header"),
            remove_headers=rule.remove_headers,
            response_headers=self.values(
                rule.response_headers, f"{where} response header", "header"
            ),
            metadata=self.values(rule.metadata, f"{where} metadata", "metadata"),
            # MCP clients read a missing scope from the 403's challenge, not from JSON-RPC.
            deny_as="http" if rule.insufficient_scope else rule.deny_as,
            jsonrpc_code=rule.jsonrpc_code,
            insufficient_scope=rule.insufficient_scope,
        )
        return compiled if when is not None else None

    def policy(self, policy: Policy) -> CompiledPolicy:
        match = None
        if policy.match is not None:
            match = self.expr(policy.match, f"policy '{policy.name}' match", "bool")
        rules = tuple(r for r in (self.rule(r, policy.name) for r in policy.rules) if r)
        exprs = _policy_exprs(match, rules)
        return CompiledPolicy(
            name=str(policy.name),
            match=match,
            rules=rules,
            default_allow=policy.default == ALLOW,
            default_status=policy.default_status,
            require_identity=policy.require_identity,
            dry_run=policy.dry_run,
            dry_run_header=policy.dry_run_header,
            response=compile_response_rules(self, policy),
            deny_as=policy.deny_as,
            first=self.first_true(rules),
            calls=frozenset(c for e in exprs for c in e.calls),
            reads=frozenset(r for e in exprs for r in e.reads),
            cache_paths=key_paths(
                (r for e in exprs for r in e.reads),
                (k for e in exprs for k in e.header_keys),
                any(e.all_headers for e in exprs),
                policy.require_identity,
            ),
        )


def _policy_exprs(
    match: CompiledExpr | None, rules: tuple[CompiledRule, ...]
) -> list[CompiledExpr]:
    exprs: list[CompiledExpr] = [match] if match is not None else []
    for rule in rules:
        exprs.append(rule.when)
        for group in (rule.headers, rule.response_headers, rule.metadata):
            exprs.extend(e for _, e in group)
    return exprs


def _all_exprs(policies: tuple[CompiledPolicy, ...]) -> list[CompiledExpr]:
    return [e for p in policies for e in _policy_exprs(p.match, p.rules)]


def _files(config: Config) -> tuple[str, ...]:
    names = [config.source.name]
    names += [p.jwks_file for p in config.identity.jwt if p.jwks_file]
    if config.identity.api_keys is not None:
        names.append(config.identity.api_keys.file)
    names += [i.client_secret_file for i in config.identity.introspection]
    return tuple(names)


def compile_config(config: Config, engine_name: str | None = None) -> CompiledConfig:
    """Compile a loaded config; `engine_name` overrides the file's `engine`."""
    library = FunctionLibrary(config.limits.max_scan_chars, config.detectors.injection_model)
    engine = make_engine(engine_name or config.engine, [*sorted(ROOTS), PRECOMPUTED], library)
    compiler = _Compiler(config, engine, library)
    policies = tuple(compiler.policy(p) for p in config.policies)
    if compiler.issues:
        raise ConfigError(compiler.issues)
    reads = frozenset(r for e in _all_exprs(policies) for r in e.reads)
    if reads & {("llm", "estimated_input_tokens"), ("llm", None)}:
        tokens.preload()  # the BPE ranks load in ~0.4 s: at load, not on a request
    library.preload(frozenset(compiler.called))
    # A 401 names why the credential was refused (WWW-Authenticate), so a policy that can
    # answer 401 needs the identity resolved as much as one that reads it.
    needs_identity = any(root == "identity" for root, _ in reads) or any(
        p.require_identity
        or p.default_status == 401
        or any(r.status == 401 and not r.allow for r in p.rules)
        for p in policies
    )
    return CompiledConfig(
        path=config.source.name,
        engine=engine,
        policies=policies,
        reads=reads,
        limits=config.limits,
        identity=IdentityResolver(config.identity, config.api_keys),
        needs_identity=needs_identity,
        functions=library,
        data=config.data,
        calls=compiler.calls,
        files=_files(config),
        deny_body=config.deny_body,
        match_calls=frozenset(c for p in policies if p.match for c in p.match.calls),
        live_calls=compiler.live_calls,
        cache=DecisionCache(config.cache.max_entries, config.cache.ttl_seconds)
        if config.cache
        else None,
    )


def load(path: str, engine_name: str | None = None) -> CompiledConfig:
    """Read, check and compile a policy file; raises ConfigError with every issue."""
    return compile_config(load_config(path), engine_name)
