"""2D Darcy flow ``-div(a grad u) = f`` on ``[0,1]²`` with ``u = 0`` on the boundary.

The FNO Darcy benchmark (Li et al. 2021, sec. 5.2; data ``piececonst_r421_N1024_smooth*``):

* coefficient ``a = psi(g)``, ``g ~ N(0, tau^(2 alpha - 2) (-Laplacian + tau² I)^(-alpha))``
  with alpha=2, tau=3 and a *Neumann* Laplacian on the unit square (a cosine series, see
  :func:`sciops.random_fields.cosine_grf`), thresholded: ``a = 12`` where ``g >= 0`` and
  ``3`` elsewhere (the paper's values; the public MATLAB demo uses 4 for the low value;
  both are configurable);
* forcing ``f = 1``;
* second-order finite differences on a 421 x 421 vertex grid, stored at 421, 211, 141 or 85
  points per axis by taking every 1st, 2nd, 3rd or 5th point (``x[::r]``, FNO convention);
  ``resolution=85`` instead solves directly on the coarse grid (a different, coarser
  discretisation of the same coefficient law: the GRF has ``resolution`` modes per axis).

Grid: ``x_j = j / (n - 1)``, ``j = 0..n-1``, both boundaries included (the stored ``u`` is
zero there). Arrays are indexed ``[x, y]``.

Discretisation: the 5-point flux form ``sum_faces a_face (u_P - u_nb) / h²``. Face values
of ``a`` are *harmonic* means of the two nodes they join, the series-resistance value that
keeps the flux continuous across a jump of ``a`` (the FNO MATLAB solver instead averages
arithmetically after spline-interpolating ``a`` to a staggered grid; for smooth ``a`` both
are second order). One sparse matrix per sample, solved by

* ``solver="gmg"`` (default): conjugate gradients preconditioned by a multigrid V-cycle
  whose hierarchy halves the vertex grid while ``n - 1`` is even (bilinear prolongation,
  Galerkin coarse operators ``P^T A P``, which follow the coefficient), then continues with
  Ruge-Stuben AMG or a sparse LU once the coarse problem is small; pyamg runs the cycles.
  On 421² it is ~2x cheaper than pure AMG (benchmarks/generators2d.py);
* ``solver="amg"``: the same with a purely algebraic (pyamg Ruge-Stuben) hierarchy;
* ``solver="direct"``: one sparse LU factorisation (SuperLU, minimum-degree ordering).

The multigrid solvers stop at relative residual ``tol``; 1e-6 matches the direct solve to
~1e-9 relative on the FNO coefficients (tests/test_darcy2d.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from sciops import autodiff, random_fields
from sciops.pdes.base import (
    PDE,
    Domain,
    Params,
    PointSample,
    SolverDiverged,
    Variable,
    dirichlet,
    param,
    register,
)

ArrayT = TypeVar("ArrayT", Tensor, np.ndarray)

# Coarse problems up to this many unknowns are factorised (SuperLU) instead of coarsened.
_DIRECT_COARSE = 20_000


@dataclass(frozen=True)
class Darcy2DParams(Params):
    resolution: int = param(421, "solver grid points per axis, boundaries included",
                            range=(5, 8193))
    output_resolution: int | None = param(
        None, "stored grid points per axis; (resolution - 1) must be a multiple of "
        "(output_resolution - 1) (stored by subsampling, FNO convention); None = resolution",
        range=(3, 8193))
    coefficient: str = param("threshold", "'threshold' (a_high where the GRF >= 0, a_low "
                             "elsewhere, FNO) or 'lognormal' (a = exp(GRF))",
                             choices=("threshold", "lognormal"))
    a_high: float = param(12.0, "coefficient where the GRF >= 0 (threshold)",
                          range=(0.0, None), open_low=True)
    a_low: float = param(3.0, "coefficient where the GRF < 0 (threshold)",
                         range=(0.0, None), open_low=True)
    grf_alpha: float = param(2.0, "smoothness exponent of the cosine-series GRF",
                             range=(0.0, None), open_low=True)
    grf_tau: float = param(3.0, "inverse length scale of the cosine-series GRF",
                           range=(0.0, None), open_low=True)
    forcing: float = param(1.0, "constant source f (used when no f is given)")
    solver: str = param("gmg", "'gmg' (geometric-algebraic multigrid CG), 'amg' (algebraic "
                        "multigrid CG) or 'direct' (sparse LU)", choices=("gmg", "amg", "direct"))
    tol: float = param(1e-6, "relative residual tolerance of the multigrid solvers",
                       range=(0.0, 1e-2), open_low=True)
    dtype: str = param("float32", "storage precision (the solve is float64)",
                       choices=("float32", "float64"))

    def validate(self) -> None:
        if self.output_resolution is not None and (
                (self.resolution - 1) % (self.output_resolution - 1)):
            raise ValueError(
                f"output_resolution={self.output_resolution}: (resolution - 1) = "
                f"{self.resolution - 1} must be a multiple of (output_resolution - 1) = "
                f"{self.output_resolution - 1} (data are stored by subsampling)")
        if self.coefficient == "threshold" and self.a_high == self.a_low:
            raise ValueError(f"a_high={self.a_high} and a_low={self.a_low} must differ "
                             "(the thresholded coefficient takes two values)")

    @property
    def stride(self) -> int:
        m = self.output_resolution or self.resolution
        return (self.resolution - 1) // (m - 1)


def face_coefficients(a: ArrayT) -> tuple[ArrayT, ArrayT]:
    """Harmonic means of ``a`` (..., n, n) across x-faces (..., n-1, n) and y-faces
    (..., n, n-1); works on tensors and arrays alike."""
    ax = 2 * a[..., :-1, :] * a[..., 1:, :] / (a[..., :-1, :] + a[..., 1:, :])
    ay = 2 * a[..., :, :-1] * a[..., :, 1:] / (a[..., :, :-1] + a[..., :, 1:])
    return ax, ay


def assemble(a: np.ndarray) -> sp.csr_matrix:
    """The SPD matrix of ``-div(a grad .)`` on the interior nodes of an ``(n, n)`` grid.

    Unknowns are the ``m = n - 2`` interior nodes per axis, flattened row-major over
    ``[x, y]``; the zero boundary values are eliminated. Units: ``a / h²``, ``h = 1/(n-1)``.
    """
    n = a.shape[-1]
    m, h = n - 2, 1.0 / (n - 1)
    ax, ay = face_coefficients(a)
    ax, ay = ax[:, 1:-1], ay[1:-1, :]  # faces touching interior nodes: (m+1, m), (m, m+1)
    diag = ax[:-1] + ax[1:] + ay[:, :-1] + ay[:, 1:]
    off_x = -ax[1:-1].ravel()
    off_y = np.zeros((m, m))
    off_y[:, :-1] = -ay[:, 1:-1]  # no coupling across the end of a flattened row
    off_y = off_y.ravel()[:-1]
    return sp.diags([diag.ravel(), off_y, off_y, off_x, off_x], [0, 1, -1, m, -m],
                    format="csr") / h**2


def bilinear_prolongation(n: int) -> sp.csr_matrix:
    """Interpolation from the interior nodes of the ``((n-1)/2 + 1)²`` grid to those of the
    ``n²`` grid (``n - 1`` even; coarse nodes are the even-indexed fine nodes), in the
    unknown ordering of :func:`assemble`. Shape ``((n-2)², ((n-1)/2 - 1)²)``."""
    mf, mc = n - 2, (n - 1) // 2 - 1
    fine = 2 * np.arange(mc) + 1  # interior index of each coarse node on the fine grid
    rows = np.concatenate((fine - 1, fine, fine + 1))
    cols = np.tile(np.arange(mc), 3)
    vals = np.repeat([0.5, 1.0, 0.5], mc)
    p1 = sp.csr_matrix((vals, (rows, cols)), shape=(mf, mc))
    return sp.kron(p1, p1, format="csr")


def multigrid(A: sp.csr_matrix, n: int, geometric: bool = True) -> Any:
    """pyamg ``MultilevelSolver`` for :func:`assemble`'s matrix on the ``n²`` grid.

    With ``geometric``, levels halve the grid while ``n - 1`` is even (bilinear ``P``,
    Galerkin ``P^T A P``); the remaining problem is factorised if it has at most
    ``_DIRECT_COARSE`` unknowns, else coarsened by Ruge-Stuben AMG. Smoothing: one forward
    Gauss-Seidel sweep down and one backward sweep up, a symmetric cycle (CG needs one) at
    half the cost of pyamg's default symmetric sweeps on both legs.
    """
    import pyamg  # imported on use: it is slow to import and only Darcy needs it
    from pyamg.multilevel import MultilevelSolver
    from pyamg.relaxation.smoothing import change_smoothers

    levels = []
    while geometric and (n - 1) % 2 == 0 and n >= 9 and A.shape[0] > _DIRECT_COARSE:
        level = MultilevelSolver.Level()
        level.A, level.P = A, bilinear_prolongation(n)
        level.R = level.P.T.tocsr()
        levels.append(level)
        A = (level.R @ A @ level.P).tocsr()
        n = (n - 1) // 2 + 1
    if A.shape[0] > _DIRECT_COARSE:
        levels.extend(pyamg.ruge_stuben_solver(A, max_coarse=1000).levels)
    else:
        level = MultilevelSolver.Level()
        level.A = A
        levels.append(level)
    ml = MultilevelSolver(levels, coarse_solver="splu")
    change_smoothers(ml, ("gauss_seidel", {"sweep": "forward"}),
                     ("gauss_seidel", {"sweep": "backward"}))
    return ml


def solve_linear(a: np.ndarray, f: np.ndarray, solver: str = "gmg",
                 tol: float = 1e-6) -> np.ndarray:
    """Solve ``-div(a grad u) = f``, ``u = 0`` on the boundary, for one sample.

    ``a``, ``f``: (n, n) float64 node values (``f`` on the boundary is unused); ``solver``
    as in :class:`Darcy2DParams`. Returns ``u`` (n, n) with zero boundary rows. Raises
    :class:`SolverDiverged` if a multigrid solve fails to reach ``tol``.
    """
    A = assemble(a)
    b = np.ascontiguousarray(f[1:-1, 1:-1]).ravel()
    if solver == "direct":
        x = spla.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(b)
    else:
        # The work is memory-bound on ~1e5-long vectors: BLAS threads only contend.
        with threadpool_limits(1, user_api="blas"):
            ml = multigrid(A, a.shape[-1], geometric=solver == "gmg")
            x, info = ml.solve(b, tol=tol, accel="cg", maxiter=200, return_info=True)
        if info != 0:
            rel = np.linalg.norm(b - A @ x) / np.linalg.norm(b)
            raise SolverDiverged(f"darcy2d: {solver} CG stopped at relative residual "
                                 f"{rel:.3g} > tol={tol:g}; use solver='direct'")
    u = np.zeros_like(a)
    u[1:-1, 1:-1] = x.reshape(a.shape[0] - 2, a.shape[1] - 2)
    return u


def flux_residual(a: Tensor, u: Tensor, f: Tensor | float, h: float) -> Tensor:
    """``-div(a grad u) - f`` on interior nodes, same stencil as :func:`assemble`.

    ``a``, ``u``: (..., n, n) (``u`` including its boundary values); ``f``: broadcastable
    to (..., n, n) or a number. Returns (..., n-2, n-2). Differentiable (torch).
    """
    ax, ay = face_coefficients(a)
    fx = ax * (u[..., 1:, :] - u[..., :-1, :])
    fy = ay * (u[..., :, 1:] - u[..., :, :-1])
    div = (fx[..., 1:, 1:-1] - fx[..., :-1, 1:-1]) + (fy[..., 1:-1, 1:] - fy[..., 1:-1, :-1])
    if isinstance(f, Tensor):
        f = f.expand_as(u)[..., 1:-1, 1:-1]
    return -div / h**2 - f


@register
class Darcy2D(PDE):
    """Steady Darcy flow -div(a grad u) = f, zero Dirichlet, FNO thresholded coefficient."""

    name = "darcy2d"
    Params = Darcy2DParams
    variables = {
        "a": Variable(("sample", "x", "y"), "1", "diffusion coefficient (permeability)"),
        "u": Variable(("sample", "x", "y"), "1", "solution (pressure), zero on the boundary"),
    }

    def coefficient(self, params: Darcy2DParams, g: Tensor) -> Tensor:
        """Map GRF samples ``g`` to the coefficient ``a`` (thresholded or lognormal)."""
        if params.coefficient == "lognormal":
            return torch.exp(g)
        return random_fields.threshold(g, params.a_high, params.a_low)

    def sample_inputs(self, params: Darcy2DParams, n: int,
                      generator: torch.Generator) -> dict[str, Tensor]:
        """Coefficient ``a`` (n, resolution, resolution) float64 from
        :func:`sciops.random_fields.cosine_grf`."""
        g = random_fields.cosine_grf(n, params.resolution, params.grf_alpha, params.grf_tau,
                       generator=generator)
        return {"a": self.coefficient(params, g)}

    def coords(self, params: Darcy2DParams) -> dict[str, tuple[str, np.ndarray]]:
        x = np.linspace(0.0, 1.0, params.output_resolution or params.resolution)
        return {"x": ("x", x), "y": ("y", x.copy())}

    def solve(self, params: Darcy2DParams, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None) -> dict[str, Tensor]:
        """Solve a batch, one sparse solve per sample (scipy/pyamg run on the CPU).

        ``inputs["a"]``: (batch, n, n) at ``params.resolution``; optional ``inputs["f"]``
        of the same shape, else ``f = params.forcing``. Returns ``a`` and ``u`` of shape
        (batch, m, m), ``m = output_resolution``, on the device of ``a``.
        """
        a = inputs["a"]
        n = params.resolution
        if a.ndim != 3 or tuple(a.shape[1:]) != (n, n):
            raise ValueError(f"a: expected shape (batch, {n}, {n}), got {tuple(a.shape)}")
        if bool((a <= 0).any()) or not bool(torch.isfinite(a).all()):
            raise ValueError("a: the coefficient must be finite and > 0 everywhere")
        a_np = a.detach().cpu().double().numpy()
        if "f" in inputs:
            f_np = inputs["f"].detach().cpu().double().expand_as(a).numpy()
        else:
            f_np = np.broadcast_to(np.float64(params.forcing), a_np.shape)
        us = []
        for i in range(a_np.shape[0]):
            us.append(solve_linear(a_np[i], f_np[i], params.solver, params.tol))
            if callback is not None:
                callback((i + 1) / a_np.shape[0])
        s = params.stride
        out_dtype = getattr(torch, params.dtype)
        u = torch.from_numpy(np.stack(us))[:, ::s, ::s]
        return {"a": a[:, ::s, ::s].to(out_dtype), "u": u.to(device=a.device, dtype=out_dtype)}

    def domain(self, params: Darcy2DParams) -> Domain:
        """The unit square, unknown ``u``, ``u = 0`` on its four sides."""
        sides = tuple(dirichlet(f"{c}={v:g}", c, v, "u") for c in ("x", "y") for v in (0.0, 1.0))
        return Domain({"x": (0.0, 1.0), "y": (0.0, 1.0)}, ("u",), conditions=sides)

    def point_sample(self, params: Darcy2DParams, inputs: Mapping[str, Tensor]) -> PointSample:
        """Refused: the PINN path needs a pointwise strong form, which a thresholded
        coefficient does not give."""
        raise NotImplementedError("darcy2d: its coefficient a is thresholded (piecewise "
                                  "constant, discontinuous), so -div(a grad u) = f has no "
                                  "pointwise strong form; its solutions come from the grid "
                                  "solver (sciops generate darcy2d)")

    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: Darcy2DParams) -> Tensor:
        """Residual ``-div(a grad u) - f``; two backends. ``fields``: ``a``, ``u`` and
        optional ``f`` (else ``params.forcing``).

        Autograd (``coords`` x, y require grad, see :mod:`sciops.autodiff`): (N,) point
        values; the flux ``a grad u`` is differentiated as a whole, so an ``a`` computed
        from the coordinates contributes ``grad a . grad u``. Returns (N,).

        Finite differences (same stencil as the solver): (batch, n, n) on the vertex grid
        ``coords["x"]`` (uniform on [0,1]). Returns (batch, n-2, n-2) on the interior nodes;
        it vanishes to the solver tolerance on ``solve``'s output and to O(h²) on smooth
        exact solutions.
        """
        u = fields["u"]
        f = fields.get("f", params.forcing)
        if autodiff.wants_autograd(coords):
            xs = [coords["x"], coords["y"]]
            a = fields["a"]
            return -autodiff.divergence([a * autodiff.grad(u, x) for x in xs], xs) - f
        x = torch.as_tensor(coords["x"], dtype=torch.float64)
        h = float(x[1] - x[0])
        return flux_residual(fields["a"].to(u.dtype), u, f, h)
