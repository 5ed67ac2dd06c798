"""Static analysis of a CEL expression: what it reads.

Both engines share this pass (it runs on cel-python's pure-Python parser): the service
learns which attributes it must build for a request. Whether the expression is well typed
is policy/checker.py's job, on the same parse tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lark
from celpy.celparser import CELParseError, CELParser

from authz.attributes import Read
from authz.schema import MACROS_BINDING_A_VARIABLE, ROOTS


@dataclass(frozen=True)
class Problem:
    """A contract violation at a 1-based position inside the expression."""

    line: int
    col: int
    message: str


@dataclass
class Analysis:
    """What one expression reads, and what is wrong with it.

    `header_keys` are the request headers read by literal name (`request.headers["x"]`,
    `"x" in request.headers`); `all_headers` is set when the map is used any other way.
    Together with `reads` they are exactly what a decision depends on (the cache key).
    """

    reads: set[Read] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    tree: lark.Tree | None = None
    header_keys: set[str] = field(default_factory=set)
    all_headers: bool = False


_parser = CELParser()


def _token(tree: lark.Tree, index: int) -> lark.Token | None:
    child = tree.children[index] if len(tree.children) > index else None
    return child if isinstance(child, lark.Token) else None


def _root_ident(member: lark.Tree) -> lark.Token | None:
    """The identifier when `member` is a bare name (member -> primary -> ident)."""
    if member.data != "member" or len(member.children) != 1:
        return None
    primary = member.children[0]
    if not isinstance(primary, lark.Tree) or primary.data != "primary":
        return None
    ident = primary.children[0]
    if isinstance(ident, lark.Tree) and ident.data == "ident":
        return _token(ident, 0)
    return None


def _bound_names(tree: lark.Tree) -> set[str]:
    """Variables introduced by comprehension macros such as `list.all(x, ...)`."""
    names: set[str] = set()
    for node in tree.iter_subtrees():
        if node.data != "member_dot_arg":
            continue
        method = _token(node, 1)
        if method is None or str(method) not in MACROS_BINDING_A_VARIABLE:
            continue
        args = node.children[2] if len(node.children) > 2 else None
        if isinstance(args, lark.Tree) and args.children:
            first = args.children[0]
            idents = [t for t in first.scan_values(lambda v: isinstance(v, lark.Token))]
            if len(idents) == 1 and idents[0].type == "IDENT":
                names.add(str(idents[0]))
    return names


def parse(source: str) -> lark.Tree:
    """Parse CEL text; raises celpy's CELParseError with a line and column."""
    return _parser.parse(source)


def analyse(source: str) -> Analysis:
    """Collect reads; a syntax error is reported as a problem (and nothing is read)."""
    result = Analysis()
    try:
        tree = parse(source)
    except CELParseError as exc:
        line, col = exc.line or 1, exc.column or 1
        result.problems.append(Problem(line, col, "syntax error"))
        return result
    result.tree = tree
    bound = _bound_names(tree)
    dotted: set[int] = set()
    _header_reads(tree, result)
    for node in tree.iter_subtrees_topdown():
        if node.data == "member_dot":
            root = _root_ident(node.children[0])  # type: ignore[arg-type]
            name = _token(node, 1)
            if root is None or name is None or str(root) in bound:
                continue
            dotted.add(id(node.children[0]))
            _read_field(result, str(root), str(name))
        elif node.data == "member" and id(node) not in dotted:
            root = _root_ident(node)
            if root is not None and str(root) in ROOTS and str(root) not in bound:
                result.reads.add((str(root), None))
    return result


def _read_field(result: Analysis, root: str, name: str) -> None:
    if root not in ROOTS:
        return
    fields = ROOTS[root]
    if fields is None:
        result.reads.add((root, None))
    elif name in fields:
        result.reads.add((root, name))


def _string_literal(node: lark.Tree | lark.Token) -> str | None:
    """The value of a plain string literal reached through single-child wrappers."""
    while isinstance(node, lark.Tree) and len(node.children) == 1:
        if node.data == "literal":
            token = node.children[0]
            text = str(token)
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" and "\\" not in text:
                return text[1:-1]
            return None
        node = node.children[0]
    return None


def _headers_member(node: lark.Tree | lark.Token) -> lark.Tree | None:
    """The `request.headers` member_dot node reached through single-child wrappers."""
    while isinstance(node, lark.Tree):
        if node.data == "member_dot":
            root = _root_ident(node.children[0])  # type: ignore[arg-type]
            name = _token(node, 1)
            if root is not None and str(root) == "request" and str(name) == "headers":
                return node
            return None
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return None


def _header_reads(tree: lark.Tree, result: Analysis) -> None:
    """Literal header names read; any other use of request.headers reads them all."""
    narrowed: set[int] = set()
    for node in tree.iter_subtrees():
        if node.data == "member_index" and len(node.children) == 2:
            member = _headers_member(node.children[0])
            key = _string_literal(node.children[1])
            if member is not None and key is not None:
                narrowed.add(id(member))
                result.header_keys.add(key.lower())
        elif node.data == "relation" and len(node.children) == 2:
            operator = node.children[0]
            if isinstance(operator, lark.Tree) and operator.data == "relation_in":
                key = _string_literal(operator)
                member = _headers_member(node.children[1])
                if member is not None and key is not None:
                    narrowed.add(id(member))
                    result.header_keys.add(key.lower())
    for node in tree.iter_subtrees():
        if _headers_member(node) is node and id(node) not in narrowed:
            result.all_headers = True


@dataclass(frozen=True)
class DetectorCall:
    """`fn(path)` at [start, end) of the source, whose argument is a plain attribute path."""

    start: int
    end: int
    function: str
    path: tuple[str | int, ...]


def _literal_key(node: lark.Tree) -> str | int | None:
    text = _string_literal(node)
    if text is not None:
        return text
    while isinstance(node, lark.Tree) and len(node.children) == 1:
        if node.data == "literal":
            token = str(node.children[0])
            return int(token) if token.isdigit() else None
        node = node.children[0]  # type: ignore[assignment]
    return None


def _simple_path(node: lark.Tree | lark.Token) -> tuple[str | int, ...] | None:
    """root.a.b["c"][0] as ("root", "a", "b", "c", 0); None for anything else."""
    while isinstance(node, lark.Tree) and len(node.children) == 1 and node.data != "primary":
        node = node.children[0]
    if not isinstance(node, lark.Tree):
        return None
    if node.data == "primary":
        ident = node.children[0]
        if isinstance(ident, lark.Tree) and ident.data == "ident":
            return (str(ident.children[0]),)
        return None
    if node.data == "member_dot":
        base = _simple_path(node.children[0])
        name = _token(node, 1)
        return None if base is None or name is None else (*base, str(name))
    if node.data == "member_index" and len(node.children) == 2:
        base = _simple_path(node.children[0])
        key = _literal_key(node.children[1])  # type: ignore[arg-type]
        return None if base is None or key is None else (*base, key)
    return None


def detector_calls(source: str, names: frozenset[str]) -> list[DetectorCall]:
    """Calls of the named functions whose single argument is an attribute path."""
    calls = []
    for node in parse(source).iter_subtrees():
        if node.data != "ident_arg" or str(node.children[0]) not in names:
            continue
        args = node.children[1] if len(node.children) > 1 else None
        if not isinstance(args, lark.Tree) or len(args.children) != 1:
            continue
        path = _simple_path(args.children[0])
        if path is not None and path[0] in ROOTS:
            calls.append(
                DetectorCall(node.meta.start_pos, node.meta.end_pos, str(node.children[0]), path)
            )
    return sorted(calls, key=lambda c: c.start)


def with_request_handle(source: str, names: frozenset[str], handle: str) -> str:
    """`fn(x)` as `fn(x, <handle>)` for every call of the named functions left in `source`
    (see functions.REQUEST_HANDLE): the engines' registered functions find the request's
    memo by it. The last call's end first, so no insertion moves a position still to come."""
    if not any(name in source for name in names):
        return source
    ends = sorted(
        (
            node.meta.end_pos
            for node in parse(source).iter_subtrees()
            if node.data == "ident_arg" and str(node.children[0]) in names
        ),
        reverse=True,
    )
    for end in ends:  # the call's text ends with its ")"
        source = f"{source[: end - 1]}, {handle}{source[end - 1 :]}"
    return source
