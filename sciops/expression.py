"""Closed-form expressions typed by a user, compiled safely to functions of torch tensors.

``compile_expression("x*sin(200*x)", ["x"])`` parses the text with :mod:`ast` (never
``eval``) and accepts only numbers, the given coordinate names, the constants ``pi`` and
``e``, ``+ - * / **``, unary ``-``/``+`` and one-argument calls of :data:`FUNCTIONS`. The
result maps coordinates (tensors by name, same shape) to a tensor of that shape, built from
torch operations only, so autograd differentiates it (any order). Anything else is a
:class:`~sciops.errors.SciopsError` naming the offending token and what is allowed.

:func:`compile_fields` reads the ``sciops solve --exact`` text: one expression for a PDE with
one unknown, or ``"u=EXPR;v=EXPR"`` naming every unknown once.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from sciops.errors import SciopsError

__all__ = ["FUNCTIONS", "CONSTANTS", "compile_expression", "compile_fields"]

FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp, "log": torch.log,
    "sqrt": torch.sqrt, "tanh": torch.tanh, "sinh": torch.sinh, "cosh": torch.cosh,
    "abs": torch.abs}
CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_LENGTH = 2000
"""Longest expression text accepted (characters)."""
MAX_DEPTH = 200
"""Deepest nesting of operations accepted (evaluation and autograd recurse per level)."""
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}

Node = Callable[[Mapping[str, Tensor]], Tensor]


def _allowed(names: Sequence[str]) -> str:
    return (f"allowed: numbers, + - * / **, coordinates {', '.join(names)}, constants pi, e, "
            f"functions {', '.join(FUNCTIONS)}")


def compile_expression(text: str, names: Sequence[str]) -> Callable[[Mapping[str, Tensor]],
                                                                    Tensor]:
    """``text`` as a function of the coordinates ``names``: ``f(coords) -> Tensor`` of the
    coordinates' shape and dtype (constants broadcast). SciopsError on anything not allowed."""
    if len(text) > MAX_LENGTH:
        raise SciopsError(f"expression of {len(text)} characters; at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise SciopsError(f"{_cut(text)} is not an expression ({e.msg}); {_allowed(names)}") \
            from None
    except (RecursionError, MemoryError, ValueError):
        raise SciopsError(f"{_cut(text)} is nested too deeply") from None

    def bad(node: ast.AST, what: str = "") -> SciopsError:
        token = ast.get_source_segment(text.strip(), node) or type(node).__name__
        shown = token if len(token) <= 40 else token[:37] + "..."
        return SciopsError(f"{_cut(text)}: {what or repr(shown)} is not allowed; "
                           f"{_allowed(names)}")

    def build(node: ast.AST, depth: int = 0) -> Node:
        if depth > MAX_DEPTH:
            raise SciopsError(f"{_cut(text)} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise bad(node)
            value = float(node.value)
            return lambda c: torch.tensor(value, dtype=_ref(c).dtype, device=_ref(c).device)
        if isinstance(node, ast.Name):
            if node.id in names:
                return lambda c: c[node.id]
            if node.id in CONSTANTS:
                const = CONSTANTS[node.id]
                return lambda c: torch.tensor(const, dtype=_ref(c).dtype, device=_ref(c).device)
            raise bad(node, f"name {node.id!r}")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            op, left, right = _BINARY[type(node.op)], build(node.left, depth + 1), \
                build(node.right, depth + 1)
            return lambda c: op(left(c), right(c))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            op, arg = _UNARY[type(node.op)], build(node.operand, depth + 1)
            return lambda c: op(arg(c))
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = ast.get_source_segment(text.strip(), node.func)
                raise bad(node.func, f"function {name!r}")
            if len(node.args) != 1 or node.keywords:
                raise bad(node, f"{node.func.id!r} with other than one argument")
            fn, arg = FUNCTIONS[node.func.id], build(node.args[0], depth + 1)
            return lambda c: fn(arg(c))
        raise bad(node)

    root = build(tree.body)
    return lambda c: torch.broadcast_to(root(c), _ref(c).shape)


def _cut(text: str) -> str:
    """``text`` quoted for a message, at most 60 characters."""
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _ref(coords: Mapping[str, Tensor]) -> Tensor:
    return next(iter(coords.values()))


def compile_fields(text: str, names: Sequence[str], outputs: Sequence[str]
                   ) -> Callable[[Mapping[str, Tensor]], dict[str, Tensor]]:
    """The ``--exact`` text as ``f(coords) -> {output: Tensor}``: ``"EXPR"`` when there is
    one output, else ``"u=EXPR;v=EXPR"`` with every output of ``outputs`` exactly once."""
    parts = [p for p in text.split(";") if p.strip()]
    if len(parts) == 1 and len(outputs) == 1 and "=" not in parts[0]:
        parts = [f"{outputs[0]}={parts[0]}"]
    exprs: dict[str, Callable[[Mapping[str, Tensor]], Tensor]] = {}
    for part in parts:
        name, eq, expr = part.partition("=")
        name = name.strip()
        if not eq or name not in outputs or name in exprs:
            raise SciopsError(f"--exact {_cut(text)}: expected {_form(outputs)}, each unknown once "
                              f"(unknowns: {', '.join(outputs)})")
        exprs[name] = compile_expression(expr, names)
    if set(exprs) != set(outputs):
        raise SciopsError(f"--exact {_cut(text)}: no expression for "
                          f"{', '.join(o for o in outputs if o not in exprs)}; expected "
                          f"{_form(outputs)}")
    return lambda c: {k: f(c) for k, f in exprs.items()}


def _form(outputs: Sequence[str]) -> str:
    return "'EXPR'" if len(outputs) == 1 else "'" + ";".join(f"{o}=EXPR" for o in outputs) + "'"
