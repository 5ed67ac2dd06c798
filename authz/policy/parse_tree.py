"""What the type checker reads off cel-python's parse tree for its rules and its messages:
where a node is, the path it selects, a string literal, a null test; and the did-you-mean
hint for a misspelt name."""

from __future__ import annotations

from collections.abc import Iterable

import lark

from authz.config.reader import closest


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or '' when none is close (at
    difflib's default cutoff, looser than the config reader's)."""
    near = closest(name, candidates, cutoff=0.6)
    return f" (did you mean '{near}'?)" if near else ""


def position(node: lark.Tree | lark.Token) -> tuple[int, int]:
    if isinstance(node, lark.Token):
        return node.line or 1, node.column or 1
    for token in node.scan_values(lambda v: isinstance(v, lark.Token)):
        return token.line or 1, token.column or 1
    meta = node.meta
    return getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1


def null_test(cond: lark.Tree | lark.Token) -> tuple[str, bool]:
    """For `PATH != null` the path and True, for `PATH == null` the path and False."""
    inner = unwrap(cond)
    if not (isinstance(inner, lark.Tree) and inner.data == "relation" and len(inner.children) == 2):
        return "", False
    operator, right = inner.children
    if operator.data not in ("relation_ne", "relation_eq"):  # type: ignore[union-attr]
        return "", False
    left = operator.children[0]  # type: ignore[union-attr]
    for path_node, null_node in ((left, right), (right, left)):
        literal = unwrap(null_node)
        is_null = isinstance(literal, lark.Tree) and literal.data == "literal"
        if is_null and literal.children[0].type == "NULL_LIT":  # type: ignore[union-attr]
            path = path_of(path_node)
            if path != "value":
                return path, operator.data == "relation_ne"  # type: ignore[union-attr]
    return "", False


def unwrap(node: lark.Tree | lark.Token) -> lark.Tree | lark.Token:
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


def string_literal(node: lark.Tree | lark.Token) -> str | None:
    inner = unwrap(node)
    if isinstance(inner, lark.Tree) and inner.data == "literal":
        text = str(inner.children[0])
        if inner.children[0].type == "STRING_LIT" and "\\" not in text:  # type: ignore[union-attr]
            return text[1:-1]
    return None


def path_of(node: lark.Tree | lark.Token) -> str:
    """The source-like text of a plain selection path, for messages."""
    inner = unwrap(node)
    if isinstance(inner, lark.Tree):
        if inner.data in ("ident", "dot_ident"):
            return str(inner.children[0])
        if inner.data == "member_dot":
            return f"{path_of(inner.children[0])}.{inner.children[1]}"
        if inner.data == "member_index":
            key = string_literal(inner.children[1])
            return f'{path_of(inner.children[0])}["{key}"]' if key is not None else "value"
    return "value"
