"""The type checker both engines share: every expression is checked against the declared
attribute types (policy/schema.py) when a file is loaded.

It runs on cel-python's parse tree, so a policy is refused with the same message and column
whichever engine runs it. What it refuses is what would otherwise misjudge silently or fail
on every request: comparing values of different types (`identity.groups == "ml"` is always
false), `in` over the wrong element type, ordering a number against a string, arithmetic
across types, wrong argument types to functions and macros, unknown attributes, fields,
variables and functions (with a did-you-mean), and, for the caller, the type of the whole
expression (a `when` must be a bool).

`dyn` (body.json, identity.claims, metadata, mcp.arguments) is accepted anywhere: those
values are checked at run time, where a wrong type is an evaluation error (a deny).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import lark

from authz.celtypes import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    TYPE,
    UINT,
    CelType,
    common,
    list_of,
    map_of,
    non_null,
)

NUMBERS = frozenset({"int", "uint", "double"})
ORDERED = NUMBERS | {"string", "bytes", "bool", "timestamp", "duration"}
TYPE_NAMES = frozenset(
    {"bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type", "type"}
)
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_ANY = "any"  # an argument slot that takes every type


@dataclass(frozen=True)
class TypeProblem:
    """A type error at a 1-based position inside the expression."""

    line: int
    col: int
    message: str


# Standard functions: name -> list of (receiver kind or None, argument kinds, result type).
# Kinds are CelType.kind values; a receiver of None is the global call form.
_Sig = tuple[str | None, tuple[str, ...], CelType]
_SIZED = ("string", "bytes", "list", "map")
_CONVERSIONS: dict[str, tuple[tuple[str, ...], CelType]] = {
    "int": (("int", "uint", "double", "string", "timestamp"), INT),
    "uint": (("int", "uint", "double", "string"), UINT),
    "double": (("int", "uint", "double", "string"), DOUBLE),
    "string": (
        ("int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"),
        STRING,
    ),
    "bytes": (("string", "bytes"), BYTES),
    "bool": (("bool", "string"), BOOL),
    "duration": (("string", "duration"), DURATION),
    "timestamp": (("string", "int", "timestamp"), TIMESTAMP),
}
_STRING_TESTS = ("contains", "startsWith", "endsWith", "matches")
_TIME_PARTS = (
    "getFullYear",
    "getMonth",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getDate",
)
_CLOCK_PARTS = ("getHours", "getMinutes", "getSeconds", "getMilliseconds")


def _standard() -> dict[str, list[_Sig]]:
    sigs: dict[str, list[_Sig]] = {}
    for kind in _SIZED:
        sigs.setdefault("size", []).extend([(None, (kind,), INT), (kind, (), INT)])
    for name, (kinds, result) in _CONVERSIONS.items():
        sigs[name] = [(None, (kind,), result) for kind in kinds]
    for name in _STRING_TESTS:
        sigs[name] = [("string", ("string",), BOOL)]
    sigs["matches"].append((None, ("string", "string"), BOOL))
    for name in _TIME_PARTS:
        sigs[name] = [("timestamp", (), INT), ("timestamp", ("string",), INT)]
    for name in _CLOCK_PARTS:
        sigs[name] = [
            ("timestamp", (), INT),
            ("timestamp", ("string",), INT),
            ("duration", (), INT),
        ]
    sigs["type"] = [(None, (_ANY,), TYPE)]
    sigs["dyn"] = [(None, (_ANY,), DYN)]
    return sigs


STANDARD = _standard()


def did_you_mean(name: str, candidates: Iterator[str] | list[str] | tuple[str, ...]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or '' when none is close."""
    options = sorted(set(candidates))
    lowered = {c.lower(): c for c in options}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f" (did you mean '{lowered[name.lower()]}'?)"
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _position(node: lark.Tree | lark.Token) -> tuple[int, int]:
    if isinstance(node, lark.Token):
        return node.line or 1, node.column or 1
    for token in node.scan_values(lambda v: isinstance(v, lark.Token)):
        return token.line or 1, token.column or 1
    meta = node.meta
    return getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1


def _kinds(t: CelType) -> str:
    return non_null(t).kind


def _fits(actual: CelType, kind: str) -> bool:
    return kind == _ANY or actual.kind == "dyn" or _kinds(actual) == kind


def comparable(left: CelType, right: CelType) -> bool:
    """Whether `==` between these types can be true (CEL's equality is only meaningful
    between values of one type; numbers compare across int, uint and double)."""
    if "dyn" in (left.kind, right.kind):
        return True
    if left.kind == "null" or right.kind == "null":
        other = right if left.kind == "null" else left
        return other.kind == "null" or other.nullable
    a, b = non_null(left), non_null(right)
    if a.kind in NUMBERS and b.kind in NUMBERS:
        return True
    if a.kind != b.kind:
        return False
    if a.kind == "list":
        return comparable(a.elem or DYN, b.elem or DYN)
    if a.kind == "map":
        return comparable(a.key or DYN, b.key or DYN) and comparable(a.elem or DYN, b.elem or DYN)
    if a.kind == "record":
        return a.name == b.name or a.name.startswith("data") or b.name.startswith("data")
    return True


class Checker:
    """Infers the type of one parsed expression against an environment of root types."""

    def __init__(self, env: dict[str, CelType], functions: dict[str, CelType]) -> None:
        self.env = env
        self.functions = functions  # the project's own functions: name -> result type
        self.problems: list[TypeProblem] = []
        self._scopes: list[dict[str, CelType]] = []
        self._narrowed: list[str] = []  # paths a surrounding ?: has tested for null

    # -- reporting -------------------------------------------------------------------------

    def _fail(self, node: lark.Tree | lark.Token, message: str) -> CelType:
        line, col = _position(node)
        self.problems.append(TypeProblem(line, col, message))
        return DYN

    # -- dispatch --------------------------------------------------------------------------

    def infer(self, node: lark.Tree | lark.Token) -> CelType:
        """The type of a parse-tree node (dyn after an error, so errors do not cascade)."""
        if isinstance(node, lark.Token):
            return DYN
        handler: Callable[[lark.Tree], CelType] | None = getattr(self, f"_{node.data}", None)
        if handler is not None:
            return handler(node)
        if len(node.children) == 1:
            return self.infer(node.children[0])
        return self._fail(node, f"unsupported syntax '{node.data}'")

    def _expr(self, node: lark.Tree) -> CelType:
        if len(node.children) == 1:
            return self.infer(node.children[0])
        cond, then, other = node.children
        self._boolean(cond, "the condition of ?:")
        # `x != null ? x : y`: x is not null in the first branch (and `==` in the second).
        tested, negated = _null_test(cond)
        self._narrowed.append(tested if negated else "")
        a = self.infer(then)
        self._narrowed[-1] = "" if negated else tested
        b = self.infer(other)
        self._narrowed.pop()
        if not comparable(a, b) and "null" not in (a.kind, b.kind):
            return self._fail(then, f"the branches of ?: have different types: {a} and {b}")
        return common([a, b])

    def _boolean(self, node: lark.Tree | lark.Token, what: str) -> None:
        t = self.infer(node)
        if t.kind not in ("bool", "dyn"):
            self._fail(node, f"{what} must be a bool, not {t}")

    def _conditionalor(self, node: lark.Tree) -> CelType:
        return self._logical(node, "||")

    def _conditionaland(self, node: lark.Tree) -> CelType:
        return self._logical(node, "&&")

    def _logical(self, node: lark.Tree, op: str) -> CelType:
        if len(node.children) == 1:
            return self.infer(node.children[0])
        for child in node.children:
            self._boolean(child, f"an operand of {op}")
        return BOOL

    def _relation(self, node: lark.Tree) -> CelType:
        if len(node.children) == 1:
            return self.infer(node.children[0])
        operator, right_node = node.children
        op = operator.data.removeprefix("relation_")  # type: ignore[union-attr]
        left_node = operator.children[0]  # type: ignore[union-attr]
        left, right = self.infer(left_node), self.infer(right_node)
        symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}.get(op)
        if op == "in":
            return self._membership(left_node, left, right)
        if op in ("eq", "ne"):
            if not comparable(left, right):
                hint = ""
                if _kinds(left) == "list" and comparable(left.elem or DYN, right):
                    hint = " (to test membership, write `value in list`)"
                if right.kind == "null" or left.kind == "null":
                    never = right if left.kind == "null" else left
                    return self._fail(
                        left_node, f"'{symbol}' compares {never}, which is never null, with null"
                    )
                return self._fail(left_node, f"'{symbol}' compares {left} with {right}{hint}")
            return BOOL
        if "dyn" in (left.kind, right.kind):
            return BOOL
        a, b = _kinds(left), _kinds(right)
        if a not in ORDERED or b not in ORDERED or (a != b and not {a, b} <= NUMBERS):
            return self._fail(left_node, f"'{symbol}' cannot order {left} and {right}")
        return BOOL

    def _membership(
        self, node: lark.Tree | lark.Token, item: CelType, container: CelType
    ) -> CelType:
        kind = _kinds(container)
        if container.kind == "dyn":
            return BOOL
        if kind == "list":
            wanted = container.elem or DYN
        elif kind == "map":
            wanted = container.key or DYN
        elif kind == "record":
            wanted = STRING
        else:
            return self._fail(node, f"'in' needs a list or a map on its right, not {container}")
        if not comparable(item, wanted) or item.kind == "null":
            return self._fail(
                node, f"'in' looks for {item} in {container}, whose elements are {wanted}"
            )
        return BOOL

    def _addition(self, node: lark.Tree) -> CelType:
        return self._arithmetic(node)

    def _multiplication(self, node: lark.Tree) -> CelType:
        return self._arithmetic(node)

    def _arithmetic(self, node: lark.Tree) -> CelType:
        if len(node.children) == 1:
            return self.infer(node.children[0])
        operator, right_node = node.children
        left_node = operator.children[0]  # type: ignore[union-attr]
        op = operator.data.split("_")[-1]  # type: ignore[union-attr]
        left, right = self.infer(left_node), self.infer(right_node)
        symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}[op]
        if "dyn" in (left.kind, right.kind):
            return DYN
        a, b = _kinds(left), _kinds(right)
        result = _arithmetic_result(op, a, b, non_null(left), non_null(right))
        if result is None:
            return self._fail(left_node, f"'{symbol}' is not defined for {left} and {right}")
        return result

    def _unary(self, node: lark.Tree) -> CelType:
        if len(node.children) == 1:
            return self.infer(node.children[0])
        operator, operand = node.children
        t = self.infer(operand)
        if t.kind == "dyn":
            return DYN
        if operator.data == "unary_not":  # type: ignore[union-attr]
            if _kinds(t) != "bool":
                return self._fail(operand, f"'!' needs a bool, not {t}")
            return BOOL
        if _kinds(t) not in ("int", "double", "duration"):
            return self._fail(operand, f"'-' is not defined for {t}")
        return non_null(t)

    def _member(self, node: lark.Tree) -> CelType:
        return self.infer(node.children[0])

    def _primary(self, node: lark.Tree) -> CelType:
        return self.infer(node.children[0])

    def _paren_expr(self, node: lark.Tree) -> CelType:
        return self.infer(node.children[0])

    def _literal(self, node: lark.Tree) -> CelType:
        token = node.children[0]
        return {
            "INT_LIT": INT,
            "UINT_LIT": UINT,
            "FLOAT_LIT": DOUBLE,
            "STRING_LIT": STRING,
            "MLSTRING_LIT": STRING,
            "BYTES_LIT": BYTES,
            "BOOL_LIT": BOOL,
            "NULL_LIT": NULL,
        }.get(token.type, DYN)  # type: ignore[union-attr]

    def _list_lit(self, node: lark.Tree) -> CelType:
        if not node.children:
            return list_of(DYN)
        return list_of(common([self.infer(c) for c in node.children[0].children]))  # type: ignore[union-attr]

    def _map_lit(self, node: lark.Tree) -> CelType:
        if not node.children:
            return map_of(DYN, DYN)
        items = node.children[0].children  # type: ignore[union-attr]
        keys = [self.infer(k) for k in items[0::2]]
        for key_node, key in zip(items[0::2], keys, strict=True):
            if key.kind not in ("string", "int", "uint", "bool", "dyn"):
                self._fail(key_node, f"a map key must be a string, int, uint or bool, not {key}")
        return map_of(common(keys), common([self.infer(v) for v in items[1::2]]))

    def _member_object(self, node: lark.Tree) -> CelType:
        return self._fail(node, "message construction is not supported")

    def _ident(self, node: lark.Tree) -> CelType:
        return self._name(node.children[0])  # type: ignore[arg-type]

    def _dot_ident(self, node: lark.Tree) -> CelType:
        return self._name(node.children[0])  # type: ignore[arg-type]

    def _name(self, token: lark.Token) -> CelType:
        name = str(token)
        for scope in reversed(self._scopes):
            if name in scope:
                return scope[name]
        if name in self.env:
            return self.env[name]
        if name in TYPE_NAMES:
            return TYPE
        known = [*self.env, *(n for s in self._scopes for n in s)]
        if name.startswith("_"):
            return self._fail(token, f"undeclared reference to '{name}'")
        hint = did_you_mean(name, known) or f" (attributes are: {', '.join(sorted(self.env))})"
        return self._fail(token, f"undeclared reference to '{name}'{hint}")

    # -- selection and indexing ------------------------------------------------------------

    def _member_dot(self, node: lark.Tree) -> CelType:
        target_node, name_token = node.children
        found = self._select(self.infer(target_node), target_node, name_token)  # type: ignore[arg-type]
        return non_null(found) if self._narrowed and _path(node) in self._narrowed else found

    def _select(self, target: CelType, target_node: lark.Tree, name_token: lark.Token) -> CelType:
        name = str(name_token)
        kind = _kinds(target)
        if target.kind == "dyn":
            return DYN
        if kind == "record":
            field = non_null(target).field(name)
            if field is None:
                known = non_null(target).field_names
                hint = did_you_mean(name, known) or f" (it has: {', '.join(sorted(known))})"
                return self._fail(name_token, f"'{_path(target_node)}' has no field '{name}'{hint}")
            return field
        if kind == "map":
            if (target.key or DYN).kind not in ("string", "dyn"):
                return self._fail(name_token, f"cannot select '.{name}' on {target}")
            return target.elem or DYN
        return self._fail(name_token, f"{target} has no fields (reading '.{name}')")

    def _member_index(self, node: lark.Tree) -> CelType:
        target_node, index_node = node.children
        target, index = self.infer(target_node), self.infer(index_node)
        kind = _kinds(target)
        if target.kind == "dyn":
            return DYN
        if kind == "list":
            if index.kind != "dyn" and _kinds(index) not in ("int", "uint"):
                return self._fail(index_node, f"a list index must be an int, not {index}")
            return target.elem or DYN
        if kind == "map":
            if not comparable(index, target.key or DYN) or index.kind == "null":
                return self._fail(index_node, f"a key of {target} cannot be {index}")
            return target.elem or DYN
        if kind == "record":
            literal = _string_literal(index_node)
            if literal is not None:
                field = non_null(target).field(literal)
                if field is None:
                    known = non_null(target).field_names
                    return self._fail(
                        index_node,
                        f"'{_path(target_node)}' has no key '{literal}'"
                        f"{did_you_mean(literal, known)}",
                    )
                return field
            if index.kind != "dyn" and _kinds(index) != "string":
                return self._fail(index_node, f"a key of {target} must be a string, not {index}")
            return common([t for _, t in non_null(target).fields or ()])
        return self._fail(index_node, f"{target} cannot be indexed")

    # -- calls -----------------------------------------------------------------------------

    def _ident_arg(self, node: lark.Tree) -> CelType:
        name_token = node.children[0]
        args = list(node.children[1].children) if len(node.children) > 1 else []  # type: ignore[union-attr]
        return self._call(str(name_token), name_token, None, None, args)  # type: ignore[arg-type]

    def _dot_ident_arg(self, node: lark.Tree) -> CelType:
        return self._ident_arg(node)

    def _member_dot_arg(self, node: lark.Tree) -> CelType:
        target_node, name_token = node.children[0], node.children[1]
        args = list(node.children[2].children) if len(node.children) > 2 else []  # type: ignore[union-attr]
        if str(name_token) in MACROS:
            return self._macro(str(name_token), name_token, target_node, args)  # type: ignore[arg-type]
        return self._call(str(name_token), name_token, target_node, self.infer(target_node), args)  # type: ignore[arg-type]

    def _call(
        self,
        name: str,
        token: lark.Token,
        target_node: lark.Tree | None,
        target: CelType | None,
        arg_nodes: list[lark.Tree],
    ) -> CelType:
        if name == "has" and target is None:
            return self._has(token, arg_nodes)
        if name in self.functions and target is None:
            if len(arg_nodes) != 1:
                return self._fail(token, f"{name}() takes one argument, got {len(arg_nodes)}")
            arg = self.infer(arg_nodes[0])
            if _kinds(arg) not in ("string", "list", "map", "record", "bytes", "dyn", "null"):
                return self._fail(arg_nodes[0], f"{name}() scans a string, list or map, not {arg}")
            return self.functions[name]
        sigs = STANDARD.get(name)
        if sigs is None:
            candidates = [*STANDARD, *self.functions, "has", *MACROS]
            return self._fail(
                token, f"undeclared function '{name}'{did_you_mean(name, candidates)}"
            )
        args = [self.infer(a) for a in arg_nodes]
        for receiver, params, result in sigs:
            if (receiver is None) != (target is None) or len(params) != len(args):
                continue
            if target is not None and not _fits(target, receiver or ""):
                continue
            if all(_fits(a, p) for a, p in zip(args, params, strict=True)):
                return result
        shown = ", ".join(str(a) for a in args)
        call = f"{target}.{name}({shown})" if target is not None else f"{name}({shown})"
        forms = "; ".join(_form(name, r, p) for r, p, _ in sigs)
        where = target_node if target_node is not None and not args else token
        return self._fail(where, f"no function {call}: {name} takes {forms}")

    def _has(self, token: lark.Token, args: list[lark.Tree]) -> CelType:
        inner = _unwrap(args[0]) if len(args) == 1 else None
        if not isinstance(inner, lark.Tree) or inner.data != "member_dot":
            return self._fail(token, "has() takes a field selection such as has(a.b)")
        target_node, name_token = inner.children
        target = self.infer(target_node)
        if target.kind != "dyn" and _kinds(target) not in ("record", "map"):
            return self._fail(name_token, f"has() cannot test a field of {target}")
        if _kinds(target) == "record":
            self._select(target, target_node, name_token)  # type: ignore[arg-type]
        return BOOL

    def _macro(
        self, name: str, token: lark.Token, target_node: lark.Tree, args: list[lark.Tree]
    ) -> CelType:
        target = self.infer(target_node)
        expected = (2, 3) if name == "map" else (2,)
        if len(args) not in expected:
            return self._fail(token, f"{name}() takes a variable and an expression")
        variable = _unwrap(args[0])
        if not (isinstance(variable, lark.Tree) and variable.data == "ident"):
            return self._fail(args[0], f"the first argument of {name}() must be a variable name")
        kind = _kinds(target)
        if target.kind == "dyn":
            element = DYN
        elif kind == "list":
            element = target.elem or DYN
        elif kind == "map":
            element = target.key or DYN
        else:
            return self._fail(target_node, f"{name}() needs a list or a map, not {target}")
        self._scopes.append({str(variable.children[0]): element})
        try:
            if name == "map":
                if len(args) == 3:
                    self._boolean(args[1], f"the filter of {name}()")
                return list_of(self.infer(args[-1]))
            self._boolean(args[1], f"the predicate of {name}()")
        finally:
            self._scopes.pop()
        return list_of(element) if name == "filter" else BOOL


def _arithmetic_result(op: str, a: str, b: str, left: CelType, right: CelType) -> CelType | None:
    if a == b and a in NUMBERS:
        return None if (op == "mod" and a == "double") else left
    if op == "add":
        if a == b and a in ("string", "bytes", "duration"):
            return left
        if a == b == "list":
            return list_of(common([left.elem or DYN, right.elem or DYN]))
        if {a, b} == {"timestamp", "duration"}:
            return TIMESTAMP
    if op == "sub":
        if a == b == "timestamp":
            return DURATION
        if a == b == "duration":
            return DURATION
        if (a, b) == ("timestamp", "duration"):
            return TIMESTAMP
    return None


def _null_test(cond: lark.Tree | lark.Token) -> tuple[str, bool]:
    """For `PATH != null` the path and True, for `PATH == null` the path and False."""
    inner = _unwrap(cond)
    if not (isinstance(inner, lark.Tree) and inner.data == "relation" and len(inner.children) == 2):
        return "", False
    operator, right = inner.children
    if operator.data not in ("relation_ne", "relation_eq"):  # type: ignore[union-attr]
        return "", False
    left = operator.children[0]  # type: ignore[union-attr]
    for path_node, null_node in ((left, right), (right, left)):
        literal = _unwrap(null_node)
        is_null = isinstance(literal, lark.Tree) and literal.data == "literal"
        if is_null and literal.children[0].type == "NULL_LIT":  # type: ignore[union-attr]
            path = _path(path_node)
            if path != "value":
                return path, operator.data == "relation_ne"  # type: ignore[union-attr]
    return "", False


def _form(name: str, receiver: str | None, params: tuple[str, ...]) -> str:
    shown = ", ".join("any value" if p == _ANY else p for p in params)
    return f"{receiver}.{name}({shown})" if receiver else f"{name}({shown})"


def _unwrap(node: lark.Tree | lark.Token) -> lark.Tree | lark.Token:
    """Down through single-child wrappers to the first node that does something."""
    while (
        isinstance(node, lark.Tree)
        and len(node.children) == 1
        and node.data
        not in (
            "ident",
            "literal",
            "dot_ident",
            "list_lit",
            "map_lit",
        )
    ):
        node = node.children[0]
    return node


def _string_literal(node: lark.Tree | lark.Token) -> str | None:
    inner = _unwrap(node)
    if isinstance(inner, lark.Tree) and inner.data == "literal":
        text = str(inner.children[0])
        if inner.children[0].type == "STRING_LIT" and "\\" not in text:  # type: ignore[union-attr]
            return text[1:-1]
    return None


def _path(node: lark.Tree | lark.Token) -> str:
    """The source-like text of a plain selection path, for messages."""
    inner = _unwrap(node)
    if isinstance(inner, lark.Tree):
        if inner.data in ("ident", "dot_ident"):
            return str(inner.children[0])
        if inner.data == "member_dot":
            return f"{_path(inner.children[0])}.{inner.children[1]}"
        if inner.data == "member_index":
            key = _string_literal(inner.children[1])
            return f'{_path(inner.children[0])}["{key}"]' if key is not None else "value"
    return "value"


def check(
    tree: lark.Tree, env: dict[str, CelType], functions: dict[str, CelType]
) -> tuple[CelType, list[TypeProblem]]:
    """The expression's type and every type problem in it."""
    checker = Checker(env, functions)
    result = checker.infer(tree)
    return result, checker.problems
