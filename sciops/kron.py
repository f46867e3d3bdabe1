"""Kronecker-structured linear algebra on tensor-product grids.

Conventions
-----------
* A grid field ``X`` has shape ``(*batch, n_1, ..., n_d)``; its vector is the row-major
  (C-order) flattening of the last ``d`` axes, so ``(A_1 ⊗ ... ⊗ A_d) vec(X)`` is
  ``vec(X ×_1 A_1 ... ×_d A_d)`` (``×_i``: multiply axis ``i`` by ``A_i``) and, for ``d = 2``,
  ``(A ⊗ B) vec(X) = vec(A X Bᵀ)`` — what ``torch.kron(A, B) @ X.flatten()`` gives.
* ``factors`` lists one small matrix per grid axis, ``n_i × n_i`` (or ``m_i × n_i`` where a
  rectangular factor makes sense). Nothing here forms the ``N × N`` matrix, ``N = Π n_i``:
  a product costs ``O(N Σ n_i)`` and a factorization ``O(Σ n_i³)``.

The functions are pure and differentiable by torch autograd (Cholesky, triangular solves
and eigenvalues backpropagate); :class:`KronSum` factorizations are meant for ``no_grad``
solves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "mode_apply",
    "kron_apply",
    "kron_cholesky_solve",
    "kron_quad",
    "kron_logdet",
    "KronSum",
    "kron_sum_logabsdet",
]


def _axis(x: Tensor, d: int, i: int) -> int:
    """Tensor axis of grid axis ``i`` in a field with ``d`` grid axes."""
    if x.ndim < d:
        raise ValueError(f"expected at least {d} grid axes, got a tensor of shape {tuple(x.shape)}")
    return x.ndim - d + i


def mode_apply(a: Tensor, x: Tensor, axis: int) -> Tensor:
    """Multiply tensor axis ``axis`` of ``x`` by the matrix ``a`` (m × n): ``n -> m`` there."""
    return torch.movedim(torch.movedim(x, axis, -1) @ a.transpose(-2, -1), -1, axis)


def kron_apply(factors: Sequence[Tensor], x: Tensor) -> Tensor:
    """``(A_1 ⊗ ... ⊗ A_d) vec(x)`` as a grid field: (*batch, m_1..m_d) from (*batch, n_1..n_d)."""
    d = len(factors)
    for i, a in enumerate(factors):
        x = mode_apply(a, x, _axis(x, d, i))
    return x


def kron_cholesky_solve(chols: Sequence[Tensor], x: Tensor) -> Tensor:
    """``(K_1 ⊗ ... ⊗ K_d)⁻¹ vec(x)`` from lower Cholesky factors ``K_i = C_i C_iᵀ``."""
    d = len(chols)
    for i, c in enumerate(chols):
        ax = _axis(x, d, i)
        x = torch.movedim(torch.cholesky_solve(torch.movedim(x, ax, -1).unsqueeze(-1), c)
                          .squeeze(-1), -1, ax)
    return x


def kron_quad(chols: Sequence[Tensor], x: Tensor) -> Tensor:
    """Quadratic form ``vec(x)ᵀ (K_1 ⊗ ... ⊗ K_d)⁻¹ vec(x)``: (*batch,).

    Whitens with ``(C_1 ⊗ ... ⊗ C_d)⁻¹`` (one triangular solve per axis) and sums squares,
    which is better conditioned than ``xᵀ K⁻¹ x`` through a full solve.
    """
    d = len(chols)
    z = x
    for i, c in enumerate(chols):
        ax = _axis(z, d, i)
        z = torch.movedim(torch.linalg.solve_triangular(c, torch.movedim(z, ax, -1).unsqueeze(-1),
                                                        upper=False).squeeze(-1), -1, ax)
    return z.pow(2).sum(dim=tuple(range(z.ndim - d, z.ndim)))


def kron_logdet(chols: Sequence[Tensor]) -> Tensor:
    """``log det(K_1 ⊗ ... ⊗ K_d) = Σ_i (N / n_i) log det K_i`` from Cholesky factors."""
    sizes = [c.shape[-1] for c in chols]
    total = 1
    for n in sizes:
        total *= n
    return sum((total // n) * 2.0 * torch.log(torch.diagonal(c, dim1=-2, dim2=-1)).sum(-1)
               for c, n in zip(chols, sizes))


class KronSum:
    """A factored Kronecker sum ``A_1 ⊕ ... ⊕ A_d + shift·I`` for repeated solves.

    The sum acts on a grid field as ``Σ_i (x ×_i A_i) + shift·x``. Build with
    :meth:`factor`; :meth:`solve` costs ``O(N Σ n_i)``. One axis is an LU factorization;
    several axes use the eigendecompositions ``A_i = V_i diag(μ_i) V_i⁻¹`` (complex in
    general: the ``A_i`` need not be symmetric, but must be diagonalizable with
    well-conditioned eigenvectors, as kernel differentiation matrices are), in which the
    sum is the diagonal ``Σ_i μ_i + shift`` ("fast diagonalization").
    """

    def __init__(self, lu: tuple[Tensor, Tensor] | None, vals: list[Tensor],
                 vecs: list[Tensor], inv_vecs: list[Tensor], shift: float):
        self._lu, self._vals, self._vecs, self._inv_vecs = lu, vals, vecs, inv_vecs
        self.shift = shift

    @classmethod
    def factor(cls, mats: Sequence[Tensor], shift: float = 0.0) -> KronSum:
        """Factor the sum of the real square matrices ``mats`` (one per axis): ``O(Σ n_i³)``."""
        if len(mats) == 1:
            a = mats[0]
            eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
            return cls(torch.linalg.lu_factor(a + shift * eye), [], [], [], shift)
        vals, vecs, inv_vecs = [], [], []
        for a in mats:
            lam, v = torch.linalg.eig(a)
            vals.append(lam)
            vecs.append(v)
            inv_vecs.append(torch.linalg.inv(v))
        return cls(None, vals, vecs, inv_vecs, shift)

    def _denominator(self) -> Tensor:
        """``Σ_i μ_i + shift`` on the grid: (n_1, ..., n_d)."""
        d = len(self._vals)
        total = torch.full((), self.shift, dtype=self._vals[0].dtype, device=self._vals[0].device)
        for i, v in enumerate(self._vals):
            shape = [1] * d
            shape[i] = v.numel()
            total = total + v.reshape(shape)
        return total

    def solve(self, f: Tensor, transpose: bool = False) -> Tensor:
        """``x`` with ``(A_1 ⊕ ... ⊕ A_d + shift·I) vec(x) = vec(f)`` (or the transposed sum):
        (*batch, n_1..n_d), real."""
        if self._lu is not None:
            lu, piv = self._lu
            return torch.linalg.lu_solve(lu, piv, f.unsqueeze(-1), adjoint=transpose).squeeze(-1)
        # (A_1 ⊕ ... ⊕ A_d)ᵀ = A_1ᵀ ⊕ ... ⊕ A_dᵀ with A_iᵀ = V_i⁻ᵀ diag(μ_i) V_iᵀ
        left = [w.transpose(-2, -1) for w in self._vecs] if transpose else self._inv_vecs
        right = [v.transpose(-2, -1) for v in self._inv_vecs] if transpose else self._vecs
        z = kron_apply(left, f.to(self._vecs[0].dtype)) / self._denominator()
        return kron_apply(right, z).real.to(f.dtype)


def kron_sum_logabsdet(mats: Sequence[Tensor], shift: float = 0.0) -> Tensor:
    """``log |det(A_1 ⊕ ... ⊕ A_d + shift·I)|``, differentiable in the ``A_i``.

    One axis: LU (``slogdet``). Several: ``Σ log|μ_1 + ... + μ_d + shift|`` over the grid of
    eigenvalues ``μ_i`` of each ``A_i`` (``O(Σ n_i³ + N)``); the gradient of eigenvalues alone
    is well defined for diagonalizable ``A_i``, even with close eigenvalues.
    """
    if len(mats) == 1:
        a = mats[0]
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        return torch.linalg.slogdet(a + shift * eye).logabsdet
    total = torch.zeros((), dtype=torch.complex128 if mats[0].dtype == torch.float64
                        else torch.complex64, device=mats[0].device) + shift
    for i, a in enumerate(mats):
        shape = [1] * len(mats)
        shape[i] = a.shape[-1]
        total = total + torch.linalg.eigvals(a).reshape(shape)
    return torch.log(total.abs()).sum()
