"""Derivative providers: the one vocabulary in which PDE definitions write their terms.

A PDE's linear and nonlinear parts are functions ``(fields, d, params) -> fields`` where
``d`` is a provider. The same functions run under four providers, which gives the four
uses of one definition:

* :class:`Symbols` — fields are Fourier coefficients and ``d`` multiplies by the symbol
  (``d.x -> i k_x``, ``d.laplacian -> -|k|²``): applied to ones, a linear part returns its
  diagonal Fourier symbol, the ``L`` of the time steppers;
* :class:`Spectral` — fields are grid values on a periodic box and ``d`` differentiates by
  FFT: the nonlinear part of the steppers and the grid (PINO) residual;
* :class:`Pointwise` — fields are point values of functions of coordinates that require
  grad and ``d`` differentiates by autograd: the PINN residual;
* :class:`sciops.models.gp_kron.KernelDerivatives` (defined there: this module imports no
  model) — fields are values on a uniform tensor grid and ``d`` applies a Gaussian process's
  kernel derivative operators: the residual the Kronecker GP solver collocates.

Spatial axes are named ``x, y, z`` in order and are the trailing axes of grid fields.
:func:`time_derivative` is the finite-difference time derivative of recorded fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from sciops import autodiff, spectral

__all__ = ["AXES", "Derivatives", "Symbols", "Spectral", "Pointwise", "time_derivative"]

AXES = ("x", "y", "z")


class Derivatives:
    """Spatial derivatives of fields; subclasses implement :meth:`partial`."""

    ndim: int

    def partial(self, u: Tensor, axis: int, n: int = 1) -> Tensor:
        """``d^n u / d x_axis^n`` (units of u per length^n)."""
        raise NotImplementedError

    def x(self, u: Tensor, n: int = 1) -> Tensor:
        """``d^n u / dx^n``."""
        return self.partial(u, 0, n)

    def y(self, u: Tensor, n: int = 1) -> Tensor:
        """``d^n u / dy^n``."""
        return self.partial(u, 1, n)

    def z(self, u: Tensor, n: int = 1) -> Tensor:
        """``d^n u / dz^n``."""
        return self.partial(u, 2, n)

    def grad(self, u: Tensor) -> tuple[Tensor, ...]:
        """``(du/dx, du/dy, ...)`` over the box's axes."""
        return tuple(self.partial(u, i) for i in range(self.ndim))

    def div(self, components: Sequence[Tensor]) -> Tensor:
        """``sum_i d(F_i)/dx_i`` of a vector field given as one component per axis."""
        if len(components) != self.ndim:
            raise ValueError(f"div: {len(components)} components on a {self.ndim}D box")
        return sum(self.partial(c, i) for i, c in enumerate(components))

    def laplacian(self, u: Tensor) -> Tensor:
        """``sum_i d²u/dx_i²``."""
        return sum(self.partial(u, i, 2) for i in range(self.ndim))

    def inv_laplacian(self, u: Tensor) -> Tensor:
        """The mean-free ``psi`` with ``laplacian(psi) = u - mean(u)``."""
        raise NotImplementedError(f"{type(self).__name__}: no inverse Laplacian (a pointwise "
                                  "residual needs it as an extra unknown)")

    def mean(self, u: Tensor) -> Tensor:
        """The box average of ``u``, broadcastable against it."""
        raise NotImplementedError(f"{type(self).__name__}: no box average (it is not a "
                                  "pointwise quantity)")


class Symbols(Derivatives):
    """Derivatives of Fourier coefficients on the rfftn layout of ``shape`` (periodic box
    of side ``lengths``): multiplication by the symbol. Odd derivatives use a zero Nyquist
    wavenumber, which keeps them real and exact on the grid."""

    def __init__(self, shape: Sequence[int], lengths: Sequence[float],
                 dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"):
        self.shape, self.lengths = tuple(shape), tuple(float(v) for v in lengths)
        self.ndim = len(self.shape)
        args = (self.shape, self.lengths, dtype, device)
        self.k = spectral.wavenumbers(*args)
        self.k_odd = spectral.wavenumbers(*args, zero_nyquist=True)
        self.k2 = spectral.wavenumber_magnitude(*args)
        self._symbols: dict[tuple[int, int], Tensor] = {}

    def symbol(self, axis: int, n: int) -> Tensor:
        """``(i k_axis)^n`` (complex, broadcastable to the spectral shape), computed once."""
        if (axis, n) not in self._symbols:
            k = (self.k_odd if n % 2 else self.k)[axis]
            self._symbols[axis, n] = (1j * k) ** n
        return self._symbols[axis, n]

    def partial(self, u: Tensor, axis: int, n: int = 1) -> Tensor:
        return self.symbol(axis, n) * u

    def laplacian(self, u: Tensor) -> Tensor:
        return -self.k2 * u

    def inv_laplacian(self, u: Tensor) -> Tensor:
        k2 = self.k2
        return torch.where(k2 > 0, -u / torch.where(k2 > 0, k2, 1.0), 0)


class Spectral(Derivatives):
    """FFT derivatives of grid fields ``(*batch, n_1..n_d)`` on a periodic box.

    ``known`` maps fields (by identity) to their rfftn, so derivatives of the state cost one
    inverse transform; other fields are transformed on first use and remembered. ``symbols``
    reuses the symbols of an earlier provider on the same grid.
    """

    def __init__(self, shape: Sequence[int], lengths: Sequence[float], dtype: torch.dtype,
                 device: torch.device | str, known: Mapping[int, tuple[Tensor, Tensor]] | None
                 = None, symbols: Symbols | None = None):
        self.symbols = symbols or Symbols(shape, lengths, dtype, device)
        self.shape, self.ndim = self.symbols.shape, self.symbols.ndim
        self._hats: dict[int, tuple[Tensor, Tensor]] = dict(known or {})

    def hat(self, u: Tensor) -> Tensor:
        """rfftn of ``u`` over the box axes (cached by identity for this provider)."""
        hit = self._hats.get(id(u))
        if hit is None or hit[0] is not u:
            hit = (u, spectral.rfft(u, self.ndim))
            self._hats[id(u)] = hit
        return hit[1]

    def _apply(self, op, u: Tensor) -> Tensor:
        return spectral.irfft(op(self.hat(u)), self.shape)

    def partial(self, u: Tensor, axis: int, n: int = 1) -> Tensor:
        return self._apply(lambda h: self.symbols.partial(h, axis, n), u)

    def laplacian(self, u: Tensor) -> Tensor:
        return self._apply(self.symbols.laplacian, u)

    def inv_laplacian(self, u: Tensor) -> Tensor:
        return self._apply(self.symbols.inv_laplacian, u)

    def mean(self, u: Tensor) -> Tensor:
        return u.mean(dim=tuple(range(-self.ndim, 0)), keepdim=True)


class Pointwise(Derivatives):
    """Autograd derivatives of point values ``(N,)`` computed from coordinate tensors
    ``coords[a]`` (``(N,)``, requiring grad) for the axes ``x, y, z`` of the box."""

    def __init__(self, coords: Mapping[str, Tensor], ndim: int):
        self.ndim = ndim
        self.coords = [coords[a] for a in AXES[:ndim]]

    def partial(self, u: Tensor, axis: int, n: int = 1) -> Tensor:
        for _ in range(n):
            u = autodiff.grad(u, self.coords[axis])
        return u


# 4th-order first-derivative stencils on uniform points (times 12 h): one-sided at the first
# two points, central inside; the last two points mirror the first two with a sign flip.
_EDGE = ((-25.0, 48.0, -36.0, 16.0, -3.0), (-3.0, -10.0, 18.0, -6.0, 1.0))
_CENTRE = (1.0, -8.0, 0.0, 8.0, -1.0)


def time_derivative(u: Tensor, t: Tensor, dim: int, order: int = 4) -> Tensor:
    """``du/dt`` of records ``u`` along ``dim`` at times ``t`` by finite differences.

    ``order=2``: second-order (any spacing, at least 3 records). ``order=4``: fourth-order
    on uniform times (at least 5 records), so that a fourth-order solver's output has a
    residual of its own order. Shape of ``u``; units of u per time.
    """
    t = torch.as_tensor(t, dtype=u.dtype, device=u.device)
    if order == 2:
        return torch.gradient(u, spacing=(t,), dim=dim, edge_order=2)[0]
    n = u.shape[dim]
    if order != 4 or n < 5:
        raise ValueError(f"time_derivative: order={order} with {n} records; use order 2 "
                         "(>= 3 records) or 4 (>= 5 uniform records)")
    h = float(t[1] - t[0])
    if not torch.allclose(t[1:] - t[:-1], t.new_tensor(h), rtol=1e-9, atol=0.0):
        raise ValueError("time_derivative: order 4 needs uniformly spaced times")
    v = u.movedim(dim, 0)

    def combo(weights: Sequence[float], start: int, stop: int) -> Tensor:
        return sum(w * v[start + j: stop + j] for j, w in enumerate(weights) if w)

    first = torch.stack([combo(w, 0, 1)[0] for w in _EDGE])
    last = torch.stack([-combo(w[::-1], n - 5, n - 4)[0] for w in _EDGE[::-1]])
    out = torch.cat((first, combo(_CENTRE, 0, n - 4), last)) / (12.0 * h)
    return out.movedim(0, dim)
