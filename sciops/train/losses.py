"""Training losses on grids ``(batch, channels, *space)``.

All relative losses are by default the **mean over the batch** of per-sample relative errors
(``reduction="mean"``); neuraloperator's ``LpLoss``/``H1Loss`` **sum** over the batch (and
channels) by default, which couples the loss scale, hence the effective learning rate, to the
batch size: ``reduction="sum"`` (``train.loss_reduction``) is that convention. Norms are
discrete with uniform quadrature weights ``h^d`` on the unit box, which cancel in the
relative losses; pass ``lengths`` for other boxes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from sciops import spectral


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


REDUCTIONS = ("mean", "sum")
"""How per-sample losses are combined over the batch: sciops' mean, or neuraloperator's sum."""


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    """Mean (default) or sum of per-sample losses ``(batch,)`` (or ``(batch, C)``)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not allowed; choose one of "
                         f"{list(REDUCTIONS)}")
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


def rel_lp(pred: Tensor, target: Tensor, p: float = 2.0, reduction: str = "mean") -> Tensor:
    """``mean_b ||pred_b - target_b||_p / ||target_b||_p`` over all channels and points
    (``sum_b`` with ``reduction="sum"``)."""
    diff = torch.linalg.vector_norm(_flat(pred - target), ord=p, dim=1)
    ref = torch.linalg.vector_norm(_flat(target), ord=p, dim=1)
    return _reduce(diff / ref.clamp_min(torch.finfo(ref.dtype).tiny), reduction)


def mse(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error over every entry; ``reduction="sum"``: the sum over the batch of
    the per-sample mean squared errors."""
    if reduction == "mean":
        return torch.mean((pred - target) ** 2)
    return _reduce(_flat((pred - target) ** 2).mean(1), reduction)


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


def rel_sobolev(pred: Tensor, target: Tensor, s: int, lengths: Sequence[float] | None = None,
                reduction: str = "mean") -> Tensor:
    """Relative periodic Sobolev ``H^s`` error, mean (or ``reduction="sum"``) over the batch.

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
    return _reduce(torch.sqrt(num / den.clamp_min(torch.finfo(den.dtype).tiny)), reduction)


def _trapezoid(shape: Sequence[int], x: Tensor) -> Tensor:
    """Trapezoidal quadrature weights on a vertex grid (ends halved), up to ``prod h``."""
    w = torch.ones((), dtype=x.dtype, device=x.device)
    for n in shape:
        axis = torch.ones(n, dtype=x.dtype, device=x.device)
        axis[[0, -1]] = 0.5
        w = w[..., None] * axis
    return w


def rel_h1_fd(pred: Tensor, target: Tensor, lengths: Sequence[float] | None = None,
              reduction: str = "mean") -> Tensor:
    """Relative ``H1`` error on non-periodic vertex grids, mean (or ``reduction="sum"``)
    over the batch.

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
    return _reduce(torch.sqrt(num / den.clamp_min(torch.finfo(den.dtype).tiny)), reduction)


def h1_neuralop(pred: Tensor, target: Tensor, lengths: Sequence[float] | None = None,
                reduction: str = "mean", eps: float = 1e-8) -> Tensor:
    """Relative ``H1`` error as neuraloperator's ``H1Loss`` (periodic, default arguments).

    Per sample **and channel** ``sqrt(sum(e² + |D e|²)) / (sqrt(sum(t² + |D t|²)) + eps)``
    with ``D`` periodic central differences ``(u[i+1] - u[i-1]) / 2h`` on a cell grid of
    spacing ``h = L / n`` per spatial axis (``lengths`` ``L``, default 1), then the mean over
    batch and channels (``reduction="sum"``: their sum, neuraloperator's default). Unlike
    ``rel_h1`` (spectral derivatives) and ``rel_h1_fd`` (one-sided ends), and unlike our other
    relative losses, channels are not pooled into one norm per sample.
    """
    d = pred.ndim - 2
    lengths = tuple(lengths or (1.0,) * d)

    def h1_squared(u: Tensor) -> Tensor:
        total = u * u
        for axis, (L, n) in enumerate(zip(lengths, u.shape[2:]), start=2):
            du = (u.roll(-1, axis) - u.roll(1, axis)) / (2 * L / n)
            total = total + du * du
        return total.flatten(2).sum(2)

    num, den = h1_squared(pred - target), h1_squared(target)
    return _reduce(num.sqrt() / (den.sqrt() + eps), reduction)


LOSSES = ("rel_l2", "rel_h1", "rel_h1_fd", "rel_hm1", "h1_neuralop", "mse")
"""Recipe names of the losses (``train.loss``)."""


def get_loss(name: str, reduction: str = "mean") -> Callable[[Tensor, Tensor], Tensor]:
    """Loss by recipe name (:data:`LOSSES`): rel_l2, rel_h1 (periodic, spectral), rel_h1_fd
    (non-periodic), rel_hm1, h1_neuralop (neuraloperator's ``H1Loss``), mse; ``reduction``
    over the batch: "mean" (sciops) or "sum" (neuraloperator)."""
    table = {"rel_l2": rel_lp, "mse": mse, "rel_h1_fd": rel_h1_fd, "h1_neuralop": h1_neuralop,
             "rel_h1": functools.partial(rel_sobolev, s=1),
             "rel_hm1": functools.partial(rel_sobolev, s=-1)}
    if name not in table:
        raise ValueError(f"loss={name!r} is not allowed; choose one of {sorted(table)}")
    return table[name] if reduction == "mean" else \
        functools.partial(table[name], reduction=reduction)
