"""Training losses on grids ``(batch, channels, *space)``.

All relative losses are the **mean over the batch** of per-sample relative errors
(neuraloperator's ``LpLoss`` sums over the batch by default, which couples the loss scale
to the batch size). Norms are discrete with uniform quadrature weights ``h^d`` on the unit
box, which cancel in the relative losses; pass ``lengths`` for other boxes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from sciops import spectral


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def rel_lp(pred: Tensor, target: Tensor, p: float = 2.0) -> Tensor:
    """``mean_b ||pred_b - target_b||_p / ||target_b||_p`` over all channels and points."""
    diff = torch.linalg.vector_norm(_flat(pred - target), ord=p, dim=1)
    ref = torch.linalg.vector_norm(_flat(target), ord=p, dim=1)
    return (diff / ref.clamp_min(torch.finfo(ref.dtype).tiny)).mean()


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over every entry."""
    return torch.mean((pred - target) ** 2)


def _sobolev_weights(shape: Sequence[int], lengths: Sequence[float], s: int, x: Tensor) -> Tensor:
    """``(1 + |k|²)^s`` on the rfftn layout, counting the halved axis twice (Parseval)."""
    k2 = spectral.wavenumber_magnitude(tuple(shape), tuple(lengths), torch.float32, x.device)
    w = (1.0 + k2) ** s
    n_last = shape[-1]
    mult = torch.full((n_last // 2 + 1,), 2.0, device=x.device)
    mult[0] = 1.0
    if n_last % 2 == 0:
        mult[-1] = 1.0
    return w * mult


def rel_sobolev(pred: Tensor, target: Tensor, s: int, lengths: Sequence[float] | None = None
                ) -> Tensor:
    """Relative periodic Sobolev ``H^s`` error, mean over the batch.

    ``||e||²_{H^s} = sum_k (1 + |k|²)^s |e_k|²`` with spectral ``e_k`` over the spatial axes
    (all axes after ``channels``). ``s=1`` is H1, ``s=-1`` the negative Sobolev norm H⁻¹
    that weights large scales (Spectral-Refiner). ``lengths`` default to 1 per axis.
    """
    d = pred.ndim - 2
    shape = pred.shape[2:]
    lengths = tuple(lengths or (1.0,) * d)
    w = _sobolev_weights(shape, lengths, s, pred)
    e = spectral.rfft((pred - target).float(), d).abs() ** 2
    t = spectral.rfft(target.float(), d).abs() ** 2
    num = (_flat(e * w)).sum(1)
    den = (_flat(t * w)).sum(1)
    return torch.sqrt(num / den.clamp_min(torch.finfo(den.dtype).tiny)).mean()


def _trapezoid(shape: Sequence[int], x: Tensor) -> Tensor:
    """Trapezoidal quadrature weights on a vertex grid (ends halved), up to ``prod h``."""
    w = torch.ones((), dtype=x.dtype, device=x.device)
    for n in shape:
        axis = torch.ones(n, dtype=x.dtype, device=x.device)
        axis[[0, -1]] = 0.5
        w = w[..., None] * axis
    return w


def rel_h1_fd(pred: Tensor, target: Tensor, lengths: Sequence[float] | None = None) -> Tensor:
    """Relative ``H1`` error on non-periodic vertex grids, mean over the batch.

    ``||e||²_{H1} = ∫ e² + |grad e|²`` with second-order finite differences (one-sided at
    the boundary, ``torch.gradient(edge_order=2)``) and trapezoidal quadrature; the grid
    spans the box ``lengths`` (default 1 per axis) with both ends included, so
    ``h = L / (n - 1)``. ``O(h²)`` accurate for smooth fields.
    """
    d = pred.ndim - 2
    shape = pred.shape[2:]
    lengths = tuple(lengths or (1.0,) * d)
    spacing = [L / (n - 1) for L, n in zip(lengths, shape)]
    w = _trapezoid(shape, pred)

    def h1_squared(u: Tensor) -> Tensor:
        grads = torch.gradient(u, spacing=spacing, dim=tuple(range(2, 2 + d)), edge_order=2)
        return _flat((u * u + sum(g * g for g in grads)) * w).sum(1)

    num, den = h1_squared(pred - target), h1_squared(target)
    return torch.sqrt(num / den.clamp_min(torch.finfo(den.dtype).tiny)).mean()


def get_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """Loss by recipe name: rel_l2, rel_h1 (periodic), rel_h1_fd (non-periodic), rel_hm1,
    mse."""
    table = {"rel_l2": rel_lp, "mse": mse, "rel_h1_fd": rel_h1_fd,
             "rel_h1": lambda p, t: rel_sobolev(p, t, 1),
             "rel_hm1": lambda p, t: rel_sobolev(p, t, -1)}
    if name not in table:
        raise ValueError(f"loss={name!r} is not allowed; choose one of {sorted(table)}")
    return table[name]
