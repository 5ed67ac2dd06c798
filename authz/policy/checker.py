"""The type checker both engines share: every expression is checked against the declared
attribute types (schema.py) when a file is loaded.

It runs on cel-python's parse tree, so a policy is refused with the same message and column
whichever engine runs it. What it refuses is what would otherwise misjudge silently or fail
on every request: comparing values of different types (`identity.groups == "ml"` is always
false), `in` over the wrong element type, ordering a number against a string, arithmetic
across types, wrong argument types to functions and macros, unknown attributes, fields,
variables and functions (with a did-you-mean), and, for the caller, the type of the whole
expression (a `when` must be a bool).

`dyn` (body.json, identity.claims, metadata, mcp.arguments) is accepted anywhere and checked
at run time (a wrong type there is an evaluation error: a deny). signatures.py says what each
operator and function accepts; parse_tree.py reads the tree for messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import lark

from authz.celtypes import (
    BOOL,
    DYN,
    TYPE,
    CelType,
    common,
    list_of,
    map_of,
    non_null,
)
from authz.policy.parse_tree import (
    did_you_mean,
    null_test,
    path_of,
    position,
    string_literal,
    unwrap,
)
from authz.policy.signatures import (
    LITERALS,
    STANDARD,
    TYPE_NAMES,
    arithmetic_result,
    call_result,
    comparable,
    equality_problem,
    kind_of,
    membership_problem,
    ordering_problem,
)
from authz.schema import MACROS_BINDING_A_VARIABLE as MACROS


@dataclass(frozen=True)
class TypeProblem:
    """A type error at a 1-based position inside the expression."""

    line: int
    col: int
    message: str


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
        line, col = position(node)
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
        tested, negated = null_test(cond)
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
            problem = membership_problem(left, right)
        elif op in ("eq", "ne"):
            problem = equality_problem(symbol or "", left, right)
        else:
            problem = ordering_problem(symbol or "", left, right)
        return BOOL if problem is None else self._fail(left_node, problem)

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
        a, b = kind_of(left), kind_of(right)
        result = arithmetic_result(op, a, b, non_null(left), non_null(right))
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
            if kind_of(t) != "bool":
                return self._fail(operand, f"'!' needs a bool, not {t}")
            return BOOL
        if kind_of(t) not in ("int", "double", "duration"):
            return self._fail(operand, f"'-' is not defined for {t}")
        return non_null(t)

    def _member(self, node: lark.Tree) -> CelType:
        return self.infer(node.children[0])

    def _primary(self, node: lark.Tree) -> CelType:
        return self.infer(node.children[0])

    def _paren_expr(self, node: lark.Tree) -> CelType:
        return self.infer(node.children[0])

    def _literal(self, node: lark.Tree) -> CelType:
        return LITERALS.get(node.children[0].type, DYN)  # type: ignore[union-attr]

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
        return non_null(found) if self._narrowed and path_of(node) in self._narrowed else found

    def _select(self, target: CelType, target_node: lark.Tree, name_token: lark.Token) -> CelType:
        name = str(name_token)
        kind = kind_of(target)
        if target.kind == "dyn":
            return DYN
        if kind == "record":
            field = non_null(target).field(name)
            if field is None:
                known = non_null(target).field_names
                hint = did_you_mean(name, known) or f" (it has: {', '.join(sorted(known))})"
                return self._fail(
                    name_token, f"'{path_of(target_node)}' has no field '{name}'{hint}"
                )
            return field
        if kind == "map":
            if (target.key or DYN).kind not in ("string", "dyn"):
                return self._fail(name_token, f"cannot select '.{name}' on {target}")
            return target.elem or DYN
        return self._fail(name_token, f"{target} has no fields (reading '.{name}')")

    def _member_index(self, node: lark.Tree) -> CelType:
        target_node, index_node = node.children
        target, index = self.infer(target_node), self.infer(index_node)
        kind = kind_of(target)
        if target.kind == "dyn":
            return DYN
        if kind == "list":
            if index.kind != "dyn" and kind_of(index) not in ("int", "uint"):
                return self._fail(index_node, f"a list index must be an int, not {index}")
            return target.elem or DYN
        if kind == "map":
            if not comparable(index, target.key or DYN) or index.kind == "null":
                return self._fail(index_node, f"a key of {target} cannot be {index}")
            return target.elem or DYN
        if kind == "record":
            literal = string_literal(index_node)
            if literal is not None:
                field = non_null(target).field(literal)
                if field is None:
                    known = non_null(target).field_names
                    return self._fail(
                        index_node,
                        f"'{path_of(target_node)}' has no key '{literal}'"
                        f"{did_you_mean(literal, known)}",
                    )
                return field
            if index.kind != "dyn" and kind_of(index) != "string":
                return self._fail(index_node, f"a key of {target} must be a string, not {index}")
            return common([t for _, t in non_null(target).fields or ()])
        return self._fail(index_node, f"{target} cannot be indexed")

    # -- calls -----------------------------------------------------------------------------

    def _ident_arg(self, node: lark.Tree) -> CelType:
        name_token = node.children[0]
        args = list(node.children[1].children) if len(node.children) > 1 else []  # type: ignore[union-attr]
        return self._call(str(name_token), name_token, None, None, args)  # type: ignore[arg-type]

    def _dot_ident_arg(self, node: lark.Tree) -> CelType:
        if (name := str(node.children[0])) in self.functions:  # precompute reads `f(x)` only
            return self._fail(node, f"write {name}(...) without the leading dot")
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
            if kind_of(arg) not in ("string", "list", "map", "record", "bytes", "dyn", "null"):
                return self._fail(arg_nodes[0], f"{name}() scans a string, list or map, not {arg}")
            return self.functions[name]
        sigs = STANDARD.get(name)
        if sigs is None:
            candidates = [*STANDARD, *self.functions, "has", *MACROS]
            return self._fail(
                token, f"undeclared function '{name}'{did_you_mean(name, candidates)}"
            )
        args = [self.infer(a) for a in arg_nodes]
        result = call_result(name, sigs, target, args)
        if isinstance(result, CelType):
            return result
        where = target_node if target_node is not None and not args else token
        return self._fail(where, result)

    def _has(self, token: lark.Token, args: list[lark.Tree]) -> CelType:
        inner = unwrap(args[0]) if len(args) == 1 else None
        if not isinstance(inner, lark.Tree) or inner.data != "member_dot":
            return self._fail(token, "has() takes a field selection such as has(a.b)")
        target_node, name_token = inner.children
        target = self.infer(target_node)
        if target.kind != "dyn" and kind_of(target) not in ("record", "map"):
            return self._fail(name_token, f"has() cannot test a field of {target}")
        if kind_of(target) == "record":
            self._select(target, target_node, name_token)  # type: ignore[arg-type]
        return BOOL

    def _macro(
        self, name: str, token: lark.Token, target_node: lark.Tree, args: list[lark.Tree]
    ) -> CelType:
        target = self.infer(target_node)
        expected = (2, 3) if name == "map" else (2,)
        if len(args) not in expected:
            return self._fail(token, f"{name}() takes a variable and an expression")
        variable = unwrap(args[0])
        if not (isinstance(variable, lark.Tree) and variable.data == "ident"):
            return self._fail(args[0], f"the first argument of {name}() must be a variable name")
        bound = str(variable.children[0])
        if bound.startswith("_"):
            return self._fail(
                args[0], f"{name}() variable '{bound}': names starting with '_' are reserved"
            )
        if bound in self.env:
            return self._fail(
                args[0], f"{name}() variable '{bound}' would hide the attribute '{bound}'"
            )
        kind = kind_of(target)
        if target.kind == "dyn":
            element = DYN
        elif kind == "list":
            element = target.elem or DYN
        elif kind == "map":
            element = target.key or DYN
        else:
            return self._fail(target_node, f"{name}() needs a list or a map, not {target}")
        self._scopes.append({bound: element})
        try:
            if name == "map":
                if len(args) == 3:
                    self._boolean(args[1], f"the filter of {name}()")
                return list_of(self.infer(args[-1]))
            self._boolean(args[1], f"the predicate of {name}()")
        finally:
            self._scopes.pop()
        return list_of(element) if name == "filter" else BOOL


def check(
    tree: lark.Tree, env: dict[str, CelType], functions: dict[str, CelType]
) -> tuple[CelType, list[TypeProblem]]:
    """The expression's type and every type problem in it."""
    checker = Checker(env, functions)
    result = checker.infer(tree)
    return result, checker.problems
