"""Evaluating the code sympy's ``parse_expr`` would ``eval``, without ``eval``.

The release's grader hands normalised model text to ``sympy.parse_expr``, which turns it into
Python code and evaluates that code: model output run as a program. To keep the release's verdicts
without that, the text still goes through sympy's own tokenizer and token transformations (so the
code is exactly the code ``parse_expr`` would run), and a small interpreter that only knows
arithmetic, sympy numbers, symbols and sympy functions evaluates it. Anything else raises
:class:`UnsafeExpression` and is never run.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Any


class UnsafeExpression(ValueError):
    """The expression needs something the safe evaluator does not do (it is never run)."""


_STRING_CONSTRUCTORS = frozenset({"Symbol", "Function", "Integer", "Float", "Rational", "Number"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMERIC_LITERAL = re.compile(r"[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?")
_PLAIN_SYMPY_FUNCTIONS = frozenset({"sqrt", "root", "cbrt", "real_root"})  # functions, not classes
_BIN_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv,
}
_UNARY_OPS: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_COMPARE_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class _SafeSympyEvaluator:
    """Evaluates the Python code produced by sympy's ``stringify_expr`` without ``eval``.

    It knows numbers, tuples/lists, arithmetic and comparisons, names bound to sympy objects,
    sympy classes and a few sympy functions, and the constructors the token transformations
    emit (``Symbol('x')``, ``Integer(2)``, ``Float('1.5')``, ...). Strings exist only as
    arguments of those constructors; no attribute access, subscripts, keywords, builtins or
    anything else -- those raise :class:`UnsafeExpression`.
    """

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    def evaluate(self, code: str) -> Any:
        tree = ast.parse(code.strip(" \t"), mode="eval")
        return self._eval(tree.body)

    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (bool, int, float, complex)) or node.value is None:
                return node.value
            raise UnsafeExpression(f"constant {type(node.value).__name__}")
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
            return _BIN_OPS[type(node.op)](self._eval(node.left), self._eval(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
            return _UNARY_OPS[type(node.op)](self._eval(node.operand))
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self._eval(elt) for elt in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise UnsafeExpression(f"{type(node).__name__} is not evaluated")

    def _name(self, name: str) -> Any:
        if name not in self.namespace:
            raise NameError(name)
        obj = self.namespace[name]
        from sympy import Basic

        if isinstance(obj, Basic) or (isinstance(obj, type) and issubclass(obj, Basic)):
            return obj
        if name in _PLAIN_SYMPY_FUNCTIONS:
            return obj
        raise UnsafeExpression(f"name {name!r} is not evaluated")

    def _compare(self, node: ast.Compare) -> Any:
        left = self._eval(node.left)
        result: Any = True
        for i, (op, comparator) in enumerate(zip(node.ops, node.comparators)):
            if type(op) not in _COMPARE_OPS:
                raise UnsafeExpression(f"{type(op).__name__} is not evaluated")
            right = self._eval(comparator)
            result = _COMPARE_OPS[type(op)](left, right)
            if i < len(node.ops) - 1 and not result:  # Python's chained comparison
                return result
            left = right
        return result

    def _call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise UnsafeExpression("only plain calls of sympy names are evaluated")
        name = node.func.id
        func = self._name(name)
        if name == "Number" and [type(a) for a in node.args] == [ast.Constant]:
            return self._number_literal(node.args[0])  # sympy's Number(str) would sympify it
        return func(*[self._argument(name, arg) for arg in node.args])

    @staticmethod
    def _number_literal(node: ast.AST) -> Any:
        import sympy

        text = getattr(node, "value", None)
        if not isinstance(text, str) or not _NUMERIC_LITERAL.fullmatch(text) or not text.strip("."):
            raise UnsafeExpression("number literal expected")
        return sympy.Integer(text) if text.isdigit() else sympy.Float(text)

    def _argument(self, func_name: str, node: ast.AST) -> Any:
        if isinstance(node, ast.Starred):
            raise UnsafeExpression("starred arguments are not evaluated")
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            return self._eval(node)
        text = node.value
        if func_name not in _STRING_CONSTRUCTORS:
            raise UnsafeExpression(f"string argument to {func_name}")
        if func_name in ("Symbol", "Function"):
            if not _IDENTIFIER.fullmatch(text):
                raise UnsafeExpression("symbol name is not an identifier")
            return text
        if (
            func_name == "Number"
            or not _NUMERIC_LITERAL.fullmatch(text)
            or not any(c.isdigit() for c in text)
        ):
            raise UnsafeExpression("number literal expected")
        return text


_PARSE_NAMESPACE: dict[str, Any] | None = None


def _parse_namespace() -> dict[str, Any]:
    """The namespace ``parse_expr`` uses by default (sympy's names, builtin functions, Max/Min)."""
    global _PARSE_NAMESPACE
    if _PARSE_NAMESPACE is None:
        import builtins
        import types

        import sympy

        namespace: dict[str, Any] = {}
        namespace.update({name: getattr(sympy, name) for name in sympy.__all__})
        for name, obj in vars(builtins).items():
            if isinstance(obj, types.BuiltinFunctionType):
                namespace[name] = obj  # kept so tokens are transformed exactly as parse_expr does
        namespace["max"] = sympy.Max
        namespace["min"] = sympy.Min
        _PARSE_NAMESPACE = namespace
    return _PARSE_NAMESPACE


def safe_parse_expr(text: str, implicit_multiplication: bool = True) -> Any:
    """What ``sympy.parse_expr(text, transformations=standard (+ implicit))`` returns, without eval.

    The string goes through sympy's own tokenizer and token transformations (so the code is the
    code parse_expr would evaluate); that code is then evaluated by :class:`_SafeSympyEvaluator`.
    Raises :class:`UnsafeExpression` for anything beyond arithmetic on sympy objects.
    """
    from sympy.parsing import sympy_parser as sp

    transformations = sp.standard_transformations
    if implicit_multiplication:
        transformations = transformations + (sp.implicit_multiplication_application,)
    namespace = _parse_namespace()
    code = sp.stringify_expr(text, {}, namespace, transformations)
    return _SafeSympyEvaluator(namespace).evaluate(code)
