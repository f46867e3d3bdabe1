"""Steady problems ``operator(u, d, p) = f`` on a box with Dirichlet data, written once.

A family writes its left side once against a derivative provider ``d``
(:mod:`sciops.derivatives`): ``d.laplacian(u)``, ``d.x(u)``, ``d.partial(u, axis, n)``.
From that one function come

* the pointwise (autograd) residual ``operator(u) - f`` of PINNs (``sciops solve --method
  pinn``), through :class:`~sciops.derivatives.Pointwise`;
* the Kronecker GP solver's residual (``--method gp-kron``): the same function under the
  GP's kernel derivative operators (:class:`sciops.models.gp_kron.KernelDerivatives`), which
  the solver linearizes by autograd for Newton;
* a random instance: a manufactured solution ``u* = Σ_j c_j Π_i sin(ω_ji x_i + φ_ji)``
  (``c ~ U(-1, 1)``, ``ω ~ U(0, k_max)`` rad/length, ``φ ~ U(0, 2π)``), its source
  ``f = operator(u*)`` by autograd and its Dirichlet data ``g = u*``; the error of a solve is
  against ``u*``.

``sciops solve P --exact EXPR`` replaces ``u*`` by an expression (the source again from the
residual, :meth:`sciops.train.physics.Problem.manufactured`).

Families: ``poisson1d`` ``-Δu = f`` (``poisson2d`` is :mod:`sciops.pdes.poisson2d`, the same
operator with its own sine-series sources), ``allencahn-steady1d/2d`` ``Δu + u(u² - 1) = f``
(the form of GP-HM's benchmarks, Fang et al. ICLR 2024), ``helmholtz1d/2d`` ``Δu + k²u = f``
and ``advection-spacetime1d`` ``u_t + β u_x = f`` on ``(t, x)`` with ``u`` given at ``t = 0``
and on the inflow face (GP-HM's advection case has ``f = 0``, ``u = sin(x - βt)``).
Grids: ``resolution`` uniform points per axis, ends included, arrays indexed in box order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from sciops.derivatives import AXES, Derivatives, Pointwise
from sciops.pdes.base import (
    PDE,
    Domain,
    Params,
    PointSample,
    Variable,
    dirichlet,
    param,
    register,
)

__all__ = ["SteadyParams", "SteadyPDE"]

_DIMS = {"t": "time"}


@dataclass(frozen=True)
class SteadyParams(Params):
    """Box, grid and random solution shared by the steady families."""

    length: float = param(1.0, "box side of every space axis (length); the box is [0, length]^d",
                          range=(0.0, None), open_low=True)
    resolution: int = param(65, "grid points per axis, ends included (the stored grid and "
                            "gp-kron's collocation grid)", range=(4, 4097))
    n_terms: int = param(3, "random solution: product-of-sines terms", range=(1, 1000))
    k_max: float = param(20.0, "random solution: largest angular frequency (rad/length)",
                         range=(0.0, None), open_low=True)


class SteadyPDE(PDE):
    """Base of the steady families: set ``name``, ``axes`` (coordinate names in box order,
    ``t`` for time) and ``Params``; write :meth:`operator`."""

    axes: ClassVar[tuple[str, ...]]
    Params: ClassVar[type[SteadyParams]] = SteadyParams

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "axes"):
            dims = ("sample", *(_DIMS.get(a, a) for a in cls.axes))
            cls.variables = {"f": Variable(dims, "1", "source, the operator's value"),
                             "u": Variable(dims, "1", "solution")}

    def operator(self, u: Tensor, d: Derivatives, p: SteadyParams) -> Tensor:
        """The left side of ``operator(u) = f``: pointwise in ``u`` and its derivatives."""
        raise NotImplementedError

    # --- derived ---------------------------------------------------------------------------
    def box(self, p: SteadyParams) -> dict[str, tuple[float, float]]:
        """Coordinate bounds in box order (length units)."""
        return {a: (0.0, p.length) for a in self.axes}

    def provider(self, coords: Mapping[str, Tensor]) -> Pointwise:
        """Autograd derivatives along the box axes, in box order (``d.partial(u, i)``)."""
        return Pointwise({AXES[i]: coords[a] for i, a in enumerate(self.axes)}, len(self.axes))

    def coords(self, params: SteadyParams) -> dict[str, tuple[str, np.ndarray]]:
        return {a: (_DIMS.get(a, a), np.linspace(lo, hi, params.resolution))
                for a, (lo, hi) in self.box(params).items()}

    def domain(self, params: SteadyParams) -> Domain:
        """The box, unknown ``u``, ``u = g`` on every face."""
        faces = tuple(dirichlet(f"{a}={v:g}", a, v, "u", "g")
                      for a, ends in self.box(params).items() for v in ends)
        return Domain(self.box(params), ("u",), conditions=faces)

    def sample_inputs(self, params: SteadyParams, n: int, generator: torch.Generator
                      ) -> dict[str, Tensor]:
        """The random solution's amplitudes ``c`` (n, T), angular frequencies ``omega``
        (n, T, d) (rad/length) and phases ``phase`` (n, T, d), ``T = n_terms``."""
        t, d = params.n_terms, len(self.axes)
        opts = {"generator": generator, "dtype": torch.float64}
        return {"c": 2.0 * torch.rand((n, t), **opts) - 1.0,
                "omega": params.k_max * torch.rand((n, t, d), **opts),
                "phase": 2.0 * math.pi * torch.rand((n, t, d), **opts)}

    def point_sample(self, params: SteadyParams, inputs: Mapping[str, Tensor]) -> PointSample:
        """Sample 0: ``u*`` (exact), ``f = operator(u*)`` and ``g = u*`` at points (N,)."""
        c, omega, phase = (inputs[k][0].double() for k in ("c", "omega", "phase"))

        def solution(pts: Mapping[str, Tensor]) -> Tensor:
            x = torch.stack([pts[a] for a in self.axes], -1)  # (N, d)
            return (torch.sin(x[:, None, :] * omega + phase).prod(-1) * c).sum(-1)

        def given(pts: Mapping[str, Tensor]) -> dict[str, Tensor]:
            with torch.enable_grad():
                free = {a: pts[a].detach().clone().requires_grad_() for a in self.axes}
                u = solution(free)
                f = self.operator(u, self.provider(free), params)
            return {"f": f.detach(), "g": u.detach()}

        return PointSample(given, lambda pts: {"u": solution(pts)})

    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: SteadyParams) -> Tensor:
        """``operator(u) - f`` by autograd: ``u``, ``f`` and the coordinates (N,) point values,
        the coordinates requiring grad. Returns (N,)."""
        return self.operator(fields["u"], self.provider(coords), params) - fields["f"]


@register
class Poisson1D(SteadyPDE):
    """Poisson -u'' = f on [0, length], Dirichlet data from a manufactured solution."""

    name, axes = "poisson1d", ("x",)

    def operator(self, u: Tensor, d: Derivatives, p: SteadyParams) -> Tensor:
        return -d.laplacian(u)


class _AllenCahn(SteadyPDE):
    """Steady Allen-Cahn Δu + u(u² - 1) = f (GP-HM's form), Dirichlet data."""

    def operator(self, u: Tensor, d: Derivatives, p: SteadyParams) -> Tensor:
        return d.laplacian(u) + u * (u * u - 1)


@dataclass(frozen=True)
class HelmholtzParams(SteadyParams):
    k: float = param(10.0, "wavenumber k (rad/length); k² must not be a Dirichlet eigenvalue "
                     "of -Δ on the box", range=(0.0, None))


class _Helmholtz(SteadyPDE):
    """Helmholtz Δu + k²u = f, Dirichlet data from a manufactured solution."""

    Params = HelmholtzParams

    def operator(self, u: Tensor, d: Derivatives, p: HelmholtzParams) -> Tensor:
        return d.laplacian(u) + p.k**2 * u


for _dim in (1, 2):
    for _base, _stem in ((_AllenCahn, "allencahn-steady"), (_Helmholtz, "helmholtz")):
        register(type(f"{_base.__name__[1:]}{_dim}D", (_base,), {
            "name": f"{_stem}{_dim}d", "axes": AXES[:_dim], "__doc__": _base.__doc__,
            "__module__": __name__}))


@dataclass(frozen=True)
class AdvectionParams(SteadyParams):
    beta: float = param(200.0, "advection speed β (length/time; GP-HM: 200)", range=(-1e6, 1e6))
    t_final: float = param(1.0, "time span (time)", range=(0.0, None), open_low=True)
    data: str = param("inflow", "faces carrying u = g: 'inflow' (t = 0 and the inflow face, the "
                      "well-posed data) or 'all' four faces (GP-HM's setting: consistent only "
                      "with an exact solution)", choices=("inflow", "all"))


@register
class AdvectionSpaceTime1D(SteadyPDE):
    """Advection u_t + beta u_x = f on (t, x), u given at t=0 and on the inflow face (or on
    every face, GP-HM's setting)."""

    name, axes = "advection-spacetime1d", ("t", "x")
    Params = AdvectionParams

    def operator(self, u: Tensor, d: Derivatives, p: AdvectionParams) -> Tensor:
        return d.partial(u, 0) + p.beta * d.partial(u, 1)  # box order (t, x)

    def box(self, p: AdvectionParams) -> dict[str, tuple[float, float]]:
        return {"t": (0.0, p.t_final), "x": (0.0, p.length)}

    def domain(self, params: AdvectionParams) -> Domain:
        """``u = g`` at ``t = 0`` and on the inflow face (``x = 0`` for ``β >= 0``, else
        ``x = length``): the well-posed data of a first-order hyperbolic equation; the
        outflow face and ``t = t_final`` carry the equation. ``data = 'all'``: every face."""
        if params.data == "all":
            return super().domain(params)
        inflow = 0.0 if params.beta >= 0 else params.length
        return Domain(self.box(params), ("u",), conditions=(
            dirichlet("t=0", "t", 0.0, "u", "g"),
            dirichlet(f"x={inflow:g}", "x", inflow, "u", "g")))
