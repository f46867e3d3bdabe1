"""Pointwise derivatives by torch autograd: the PINN backend of the PDE residuals.

Convention: coordinates are separate 1-D tensors ``x_i`` of shape ``(N,)`` (one entry per
collocation point) that require grad, and a field ``u`` of shape ``(N,)`` is computed from
them *pointwise*: ``u[n]`` depends on ``x_i[n]`` only (a network applied row by row). Then
``d sum(u) / d x_i = du/dx_i`` entry by entry, so one backward pass gives the whole
derivative field. Every derivative keeps its graph (``create_graph=True``): it can be
differentiated again and trained through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["wants_autograd", "grad", "laplacian", "divergence"]


def wants_autograd(coords: Mapping[str, object]) -> bool:
    """True when any coordinate is a tensor that requires grad (the PINN backend)."""
    return any(isinstance(c, Tensor) and c.requires_grad for c in coords.values())


def grad(u: Tensor, x: Tensor) -> Tensor:
    """``du/dx`` pointwise, shape of ``u`` (units of u per unit of x).

    A ``u`` that does not depend on ``x`` (a constant coefficient, say) has derivative 0.
    """
    if not u.requires_grad:
        return torch.zeros_like(u)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True, allow_unused=True)
    return torch.zeros_like(u) if g is None else g


def laplacian(u: Tensor, xs: Sequence[Tensor]) -> Tensor:
    """``sum_i d²u/dx_i²`` over the coordinates ``xs``, shape of ``u``."""
    return sum(grad(grad(u, x), x) for x in xs)


def divergence(components: Sequence[Tensor], xs: Sequence[Tensor]) -> Tensor:
    """``sum_i d(F_i)/dx_i`` of a vector field given as components, one per coordinate."""
    if len(components) != len(xs):
        raise ValueError(f"divergence: {len(components)} components for {len(xs)} coordinates")
    return sum(grad(f, x) for f, x in zip(components, xs))
