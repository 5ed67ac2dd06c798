"""celpy's interpreter, subclassed to evaluate as the C++ runtime does."""

from __future__ import annotations

from typing import Any

import celpy
from celpy import celtypes
from celpy.evaluation import CELEvalError

from authz.policy.engine.python_kinds import first_error, kind_of
from authz.policy.engine.python_ops import is_bool, logical


class _Evaluator(celpy.evaluation.Evaluator):
    """celpy's interpreter, evaluating as the runtime does: `||` and `&&` left to right with
    short-circuit; an error in a map literal's key or value, or a key of a kind no map can
    have, makes the map an error (celpy kept errors as values), a duplicate key raises (as
    the runtime does); an error in a `map` or `filter` body is an error value (celpy raised
    it, past any `||` or `&&` that would have absorbed it)."""

    def sub_evaluator(self, ast: Any) -> _Evaluator:
        return _Evaluator(ast, activation=self.activation)

    def member_dot_arg(self, tree: Any) -> Any:
        # `map` and `filter` raise their body's error; as a value, `||` and `&&` absorb it.
        try:
            return super().member_dot_arg(tree)
        except CELEvalError as error:
            return error

    def conditionalor(self, tree: Any) -> Any:
        return self._short_circuit(tree, absorbing=True)

    def conditionaland(self, tree: Any) -> Any:
        return self._short_circuit(tree, absorbing=False)

    def _short_circuit(self, tree: Any, absorbing: bool) -> Any:
        """`a || b` and `a && b` left to right, as the runtime does: `b` is not evaluated
        when `a` decides. An error or a non-bool on one side still yields to the other side
        deciding; what the runtime raises (a duplicate map key) is raised here too, so
        whether it is reached must be the same."""
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        left = self.visit(tree.children[0])
        if is_bool(left, absorbing):
            return left
        right = self.visit(tree.children[1])
        try:
            return logical(absorbing)(left, right)
        except TypeError as exc:
            return CELEvalError("no such overload", TypeError, exc.args)

    def mapinits(self, tree: Any) -> Any:
        values = self.visit_children(tree)
        error = first_error(*values)
        if error is not None:
            return error
        result = celtypes.MapType()
        for key, value in zip(values[0::2], values[1::2], strict=True):
            if kind_of(key) not in _KEY_KINDS:
                return CELEvalError(f"invalid map key type: {kind_of(key)}")
            if any(kind_of(stored) == kind_of(key) and stored == key for stored in result):
                # The runtime raises rather than returning an error value.
                raise _RuntimeRaises("duplicate key in map")
            try:
                result[key] = value
            except TypeError:  # 1 and 1u: distinct keys in CEL, one key to a Python dict
                return CELEvalError("int and uint keys of the same value")
        return result


_KEY_KINDS = frozenset({"bool", "int", "uint", "string"})


class _RuntimeRaises(Exception):
    """Where the C++ runtime raises instead of returning an error value, so that no `||`
    or `&&` absorbs it; celpy's own handlers (ValueError, TypeError) must not catch it."""


class Runner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return _Evaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)
