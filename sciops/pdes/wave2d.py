"""2D acoustic wave equation ``u_tt = div(c(x)² grad u)``, at rest initially (``u_t = 0``).

Boxes (``boundary``):

* ``"dirichlet"`` — ``[0,1]²`` with ``u = 0`` on the boundary, vertex grid
  ``x_j = j/(n-1)`` (boundaries included, the CNO data grid);
* ``"periodic"`` — the unit torus ``[0,1)²``, grid ``x_j = j/n``.

Initial displacement, the wave benchmark of the convolutional neural operator paper
(Raonic et al. 2023, app. "Wave equation": K=24, r=1, c=0.1, operator ``u(0) -> u(T=5)``
on 64², 512 training / 128 validation / 256 test samples):

    u0 = (pi/K²) sum_{k,l=1..K} a_kl (k² + l²)^(-decay) sin(pi k x) sin(pi l y),  a_kl ~ U(-1,1).

On the torus the same amplitudes multiply complex exponentials ``exp(2 pi i (k x + l y))``,
``k, l = -K..K``, with complex weights ``a + i b`` (real part taken).

Media (``medium``): ``"constant"`` speed ``c``; ``"grf"``, ``c exp(c_sigma g / std(g))``
with ``g`` a Gaussian random field (the Neumann cosine series of
:func:`sciops.random_fields.cosine_grf` on the Dirichlet box — its even reflection is
smooth — or :func:`sciops.random_fields.grf` on the torus); ``"layered"``, ``n_layers``
horizontal layers in ``y`` at uniformly random depths, speeds ``c exp(c_sigma xi)``,
interfaces smoothed by ``erf`` over ``layer_width``.

Solvers (``solver``):

* ``"modal"`` (constant medium; ``"auto"`` picks it): the exact solution, each mode
  times ``cos(omega t)`` with ``omega = c pi |(k,l)|`` (Dirichlet) or ``2 pi c |(k,l)|``
  (torus) — no time-stepping error at all;
* ``"verlet"`` (any medium; ``"auto"`` picks it for variable media): Fourier
  pseudo-spectral space (on the torus directly; on the Dirichlet box by odd reflection of
  ``u`` and even reflection of ``c²`` to the period-2 box, i.e. in the sine basis) and
  velocity-Verlet (Stormer-Verlet, leapfrog) time stepping: second order, symplectic, so
  the discrete energy :func:`energy` is conserved to round-off. Stable for
  ``dt c_max < 2 h / (pi sqrt 2) ~ 0.45 h``; ``dt=None`` uses ``cfl h / c_max``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sciops import autodiff, random_fields, spectral
from sciops.pdes.base import (
    PDE,
    Condition,
    Domain,
    Params,
    PointSample,
    SolverDiverged,
    Variable,
    dirichlet,
    param,
    register,
)
from sciops.spectral import (
    even_extension,
    mode_numbers_squared,
    odd_extension,
    sine_basis,
    synthesize,
)

# |u| this many times the initial maximum counts as a blow-up (energy is conserved).
_BLOWUP_FACTOR = 1e3
# Verlet steps allowed per record interval: more means a too small dt or too fast a medium
# (the run would take hours to days), refused up front rather than left hanging.
_MAX_STEPS = 1_000_000


@dataclass(frozen=True)
class Wave2DParams(Params):
    boundary: str = param("dirichlet", "'dirichlet' ([0,1]², u=0 on the boundary) or "
                          "'periodic' (unit torus)", choices=("dirichlet", "periodic"))
    resolution: int = param(64, "grid points per axis (Dirichlet: boundaries included)",
                            range=(8, 8192))
    c: float = param(0.1, "wave speed (constant medium) or its reference value "
                     "(length/time)", range=(0.0, None), open_low=True)
    medium: str = param("constant", "'constant', 'grf' (log-normal random speed) or "
                        "'layered' (horizontal layers)", choices=("constant", "grf", "layered"))
    c_sigma: float = param(0.25, "grf/layered: standard deviation of log(speed / c); at most "
                           "3 (speed contrasts up to ~e^12 keep max(c) and the CFL step finite)",
                           range=(0.0, 3.0))
    c_alpha: float = param(3.0, "grf: smoothness exponent of the speed field",
                           range=(0.0, None), open_low=True)
    c_tau: float = param(4.0, "grf: inverse length scale of the speed field",
                         range=(0.0, None), open_low=True)
    n_layers: int = param(4, "layered: number of layers", range=(2, 1000))
    layer_width: float = param(0.01, "layered: interface smoothing width (length)",
                               range=(0.0, None), open_low=True)
    modes: int = param(24, "initial condition: modes K per axis", range=(1, 4096))
    decay: float = param(1.0, "initial condition: amplitudes scale as (k² + l²)^(-decay); "
                         "-2..20 (outside, the amplitudes over/underflow for large modes)",
                         range=(-2.0, 20.0))
    t_final: float = param(5.0, "last stored time", range=(0.0, None), open_low=True)
    n_records: int = param(10, "stored times after t=0, evenly spaced", range=(1, 1_000_000))
    solver: str = param("auto", "'modal' (exact, constant medium), 'verlet' (spectral + "
                        "leapfrog) or 'auto'", choices=("auto", "modal", "verlet"))
    dt: float | None = param(None, "verlet: time step (shortened to divide the record "
                             "interval); None = cfl h / max(c)", range=(0.0, None),
                             open_low=True)
    cfl: float = param(0.3, "verlet: dt max(c) / h when dt is None (stable below 0.45)",
                       range=(0.0, 0.45), open_low=True)
    dtype: str = param("float32", "storage precision (solves run in float64)",
                       choices=("float32", "float64"))

    def validate(self) -> None:
        if self.solver == "modal" and self.medium != "constant":
            raise ValueError(f"solver='modal' needs medium='constant', got medium={self.medium!r}")
        need = self.modes + 2 if self.boundary == "dirichlet" else 2 * self.modes + 1
        if self.resolution < need:
            raise ValueError(f"resolution={self.resolution} is too small for modes="
                             f"{self.modes} with boundary={self.boundary!r}: need "
                             f"resolution >= {need}")

    @property
    def use_modal(self) -> bool:
        return self.solver == "modal" or (self.solver == "auto" and self.medium == "constant")

    @property
    def spacing(self) -> float:
        n = self.resolution
        return 1.0 / (n - 1) if self.boundary == "dirichlet" else 1.0 / n


def grid(params: Wave2DParams) -> np.ndarray:
    """Node coordinates of one axis (float64): vertex grid (Dirichlet) or ``j/n`` (torus)."""
    n = params.resolution
    return np.linspace(0.0, 1.0, n) if params.boundary == "dirichlet" else np.arange(n) / n


def modal_basis(params: Wave2DParams, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Basis ``B`` (n, M) of the initial-condition series and mode frequencies ``omega``
    (M, M) in rad/time for the constant speed ``params.c``.

    Dirichlet: ``B[j, k] = sin(pi (k+1) x_j)``, ``M = K``. Torus:
    ``B[j, k] = exp(2 pi i m_k x_j)``, ``m_k = k - K``, ``M = 2K + 1`` (complex128).
    """
    K = params.modes
    if params.boundary == "dirichlet":
        return (sine_basis(params.resolution, K, device),
                params.c * math.pi * mode_numbers_squared(K, device).sqrt())
    m = torch.arange(-K, K + 1, dtype=torch.float64, device=device)
    x = torch.as_tensor(grid(params), device=device)
    basis = torch.exp(2j * math.pi * x[:, None] * m[None, :])
    return basis, 2 * math.pi * params.c * (m[:, None] ** 2 + m[None, :] ** 2).sqrt()


def modal_solution_at(params: Wave2DParams, coeffs: Tensor, x: Tensor, y: Tensor,
                      t: Tensor | None = None) -> Tensor:
    """The constant-speed series of :func:`modal_basis` at points ``x``, ``y`` (N,), at rest
    at t=0 and evaluated at times ``t`` (N,) (None: the initial displacement). Returns (N,)
    in the dtype of ``x``; differentiable in the coordinates."""
    K = params.modes
    if params.boundary == "dirichlet":
        k = torch.arange(1, K + 1, dtype=x.dtype, device=x.device)
        bx, by = torch.sin(math.pi * x[:, None] * k), torch.sin(math.pi * y[:, None] * k)
    else:
        m = torch.arange(-K, K + 1, dtype=x.dtype, device=x.device)
        bx = torch.polar(torch.ones_like(x[:, None] * m), 2 * math.pi * x[:, None] * m)
        by = torch.polar(torch.ones_like(y[:, None] * m), 2 * math.pi * y[:, None] * m)
    c = coeffs.to(device=x.device, dtype=bx.dtype)
    if t is None:
        out = ((bx @ c) * by).sum(-1)
    else:
        omega = modal_basis(params, x.device)[1].to(x.dtype)
        out = torch.einsum("nk,nkl,nl->n", bx, c * torch.cos(omega * t[:, None, None]), by)
    return out.real if out.is_complex() else out


def modal_solution(coeffs: Tensor, basis: Tensor, omega: Tensor, t: Tensor) -> Tensor:
    """Exact constant-speed solution at rest at t=0: ``sum coeffs cos(omega t) B B``.

    ``coeffs`` (b, M, M), ``basis`` (n, M), ``omega`` (M, M), ``t`` (T,).
    Returns (b, T, n, n) float64.
    """
    phase = torch.cos(omega * t.to(omega)[:, None, None])  # (T, M, M)
    return synthesize(coeffs[:, None] * phase, basis)


class WaveOperator:
    """``u -> div(c² grad u)`` on the computational box, Fourier pseudo-spectral.

    ``c``: (..., n, n) speed on the grid of ``boundary`` (leading dims broadcast against
    the fields). Dirichlet fields are odd-reflected to the period-``2 length`` box and
    ``c²`` even-reflected, so the operator acts on sine series; :meth:`extend` and
    :meth:`restrict` move fields between the grid and the box. Symmetric negative
    semi-definite in the box's mean inner product.
    """

    def __init__(self, c: Tensor, boundary: str, length: float = 1.0):
        self.n = c.shape[-1]
        self.dirichlet = boundary == "dirichlet"
        c2 = c * c
        self.c2 = even_extension(c2) if self.dirichlet else c2
        box = 2 * length if self.dirichlet else length
        self.lengths = (box, box)

    def extend(self, u: Tensor) -> Tensor:
        return odd_extension(u) if self.dirichlet else u

    def restrict(self, u: Tensor) -> Tensor:
        return u[..., : self.n, : self.n] if self.dirichlet else u

    def __call__(self, u: Tensor) -> Tensor:
        grads = spectral.gradient(u, self.lengths)
        return spectral.divergence([self.c2 * g for g in grads], self.lengths)


def verlet(u: Tensor, v: Tensor, op: WaveOperator, dt: float, steps: int) -> tuple[Tensor, Tensor]:
    """``steps`` velocity-Verlet steps of ``u_tt = op(u)`` from displacement ``u`` and
    velocity ``v`` (box fields). Returns the new ``(u, v)``."""
    acc = op(u)
    for _ in range(steps):
        v = v + (0.5 * dt) * acc
        u = u + dt * v
        acc = op(u)
        v = v + (0.5 * dt) * acc
    return u, v


def energy(u: Tensor, v: Tensor, op: WaveOperator, dt: float = 0.0) -> Tensor:
    """Energy per unit area ``mean(v² + c² |grad u|²) / 2`` over the box, shape ``u.shape[:-2]``.

    With ``dt`` > 0 it is velocity Verlet's exactly conserved modified energy
    ``... - dt²/8 mean(op(u)²)`` (for ``u'' = -w² u`` the scheme conserves
    ``v² + w² (1 - dt² w²/4) u²``); with ``dt = 0`` the physical energy, which oscillates
    by O(dt²) along a Verlet trajectory but does not drift.
    """
    lu = op(u)
    dims = (-2, -1)
    e = 0.5 * (v * v).mean(dims) - 0.5 * (u * lu).mean(dims)
    return e - (dt * dt / 8.0) * (lu * lu).mean(dims)


def layered_profile(y: Tensor, lo: Tensor, hi: Tensor, speeds: Tensor, width: float,
                    periodic: bool) -> Tensor:
    """Speed ``sum_l speeds_l 1[lo_l <= y < hi_l]`` with erf-smoothed edges.

    ``y`` (n,); ``lo``, ``hi``, ``speeds`` (b, L). On the torus, layers may wrap
    (``hi`` up to ``lo + 1``) and images at ``y +- 1`` are added. Returns (b, n).
    """
    shifts = (-1.0, 0.0, 1.0) if periodic else (0.0,)
    y = y[None, None, :]
    box = sum(0.5 * (torch.erf((y + s - lo[..., None]) / width)
                     - torch.erf((y + s - hi[..., None]) / width)) for s in shifts)
    return (speeds[..., None] * box).sum(1)


@register
class Wave2D(PDE):
    """Acoustic wave u_tt = div(c² grad u): exact modal (constant c) or spectral Verlet."""

    name = "wave2d"
    Params = Wave2DParams
    variables = {
        "u": Variable(("sample", "time", "x", "y"), "1", "displacement"),
        "c": Variable(("sample", "x", "y"), "length/time", "wave speed"),
    }

    def sample_inputs(self, params: Wave2DParams, n: int,
                      generator: torch.Generator) -> dict[str, Tensor]:
        """Series coefficients ``coeffs`` of ``u0`` ((n, K, K) float64, Dirichlet;
        (n, 2K+1, 2K+1) complex128, torus; see :func:`modal_basis`) and speed ``c``
        (n, res, res). ``u0`` is drawn first, so a seed gives the same ``u0`` in every medium."""
        K = params.modes
        if params.boundary == "dirichlet":
            coeffs = random_fields.sine_coefficients(n, K, params.decay, generator)
        else:
            m = torch.arange(-K, K + 1, dtype=torch.float64)
            k2 = m[:, None] ** 2 + m[None, :] ** 2
            amp = torch.where(k2 > 0, k2, 1.0) ** (-params.decay) * (k2 > 0)
            ab = 2.0 * torch.rand((n, 2, 2 * K + 1, 2 * K + 1), generator=generator,
                                  dtype=torch.float64) - 1.0
            coeffs = (math.pi / K**2) * amp * torch.complex(ab[:, 0], ab[:, 1])
        return {"coeffs": coeffs, "c": self._speed(params, n, generator)}

    def _speed(self, params: Wave2DParams, n: int, generator: torch.Generator) -> Tensor:
        res = params.resolution
        if params.medium == "constant":
            return torch.full((n, res, res), params.c, dtype=torch.float64)
        if params.medium == "grf":
            if params.boundary == "dirichlet":
                g = random_fields.cosine_grf(n, res, params.c_alpha, params.c_tau,
                                             generator=generator)
            else:
                g = random_fields.grf(n, (res, res), (1.0, 1.0), params.c_alpha, params.c_tau,
                                      generator=generator)
            g = g / g.std(dim=(-2, -1), keepdim=True)
            return params.c * torch.exp(params.c_sigma * g)
        L = params.n_layers
        periodic = params.boundary == "periodic"
        edges = torch.sort(torch.rand((n, L if periodic else L - 1), generator=generator,
                                      dtype=torch.float64), dim=1).values
        xi = torch.randn((n, L), generator=generator, dtype=torch.float64)
        if periodic:
            lo, hi = edges, torch.cat((edges[:, 1:], edges[:, :1] + 1.0), dim=1)
        else:
            inf = torch.full((n, 1), math.inf, dtype=torch.float64)
            lo, hi = torch.cat((-inf, edges), dim=1), torch.cat((edges, inf), dim=1)
        y = torch.as_tensor(grid(params))
        profile = layered_profile(y, lo, hi, params.c * torch.exp(params.c_sigma * xi),
                                  params.layer_width, periodic)
        return profile[:, None, :].expand(n, res, res).clone()

    def coords(self, params: Wave2DParams) -> dict[str, tuple[str, np.ndarray]]:
        x = grid(params)
        t = np.linspace(0.0, params.t_final, params.n_records + 1)
        return {"t": ("time", t), "x": ("x", x), "y": ("y", x.copy())}

    def solve(self, params: Wave2DParams, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None) -> dict[str, Tensor]:
        """Solve a batch. ``inputs``: ``coeffs`` and ``c`` from :meth:`sample_inputs`.

        Returns ``u`` (batch, n_records + 1, n, n) including t=0 and ``c`` (batch, n, n),
        in ``params.dtype`` on the device of ``c``. Raises :class:`SolverDiverged` if a
        Verlet run blows up (``dt`` above the stability limit).
        """
        c = inputs["c"].double()
        n = params.resolution
        if c.ndim != 3 or tuple(c.shape[1:]) != (n, n):
            raise ValueError(f"c: expected shape (batch, {n}, {n}), got {tuple(c.shape)}")
        if not bool((c > 0).all()):
            raise ValueError("c: the wave speed must be > 0 everywhere")
        basis, omega = modal_basis(params, c.device)
        coeffs = inputs["coeffs"].to(c.device)
        t = torch.linspace(0.0, params.t_final, params.n_records + 1, dtype=torch.float64,
                           device=c.device)
        if params.use_modal:
            u = modal_solution(coeffs, basis, omega, t)
            if callback is not None:
                callback(1.0)
        else:
            u = self._verlet(params, coeffs, basis, c, callback)
        out_dtype = getattr(torch, params.dtype)
        return {"u": u.to(out_dtype), "c": c.to(out_dtype)}

    def _verlet(self, params: Wave2DParams, coeffs: Tensor, basis: Tensor, c: Tensor,
                callback: Callable[[float], None] | None) -> Tensor:
        op = WaveOperator(c, params.boundary)
        u0 = synthesize(coeffs, basis)
        interval = params.t_final / params.n_records
        dt = params.dt if params.dt is not None else params.cfl * params.spacing / float(c.max())
        if not dt > 0 or interval / dt > _MAX_STEPS:
            raise SolverDiverged(
                f"wave2d: dt={dt:.3g} needs more than {_MAX_STEPS:.0e} Verlet steps per record "
                f"interval {interval:.3g} (max(c)={float(c.max()):.3g}); raise dt or cfl, or "
                f"lower c, c_sigma or t_final/n_records", list(range(c.shape[0])))
        steps = max(1, math.ceil(interval / dt - 1e-9))
        limit = _BLOWUP_FACTOR * (float(u0.abs().max()) + 1e-300)
        u = op.extend(u0)
        v = torch.zeros_like(u)
        frames = [u0]
        for j in range(params.n_records):
            u, v = verlet(u, v, op, interval / steps, steps)
            peak = u.abs().amax(dim=(-2, -1))
            bad = ~torch.isfinite(peak) | (peak > limit)
            if bool(bad.any()):
                raise SolverDiverged(
                    f"wave2d diverged before t={(j + 1) * interval:g} (dt={interval / steps:.3g});"
                    f" reduce dt or cfl (stable for dt max(c)/h < 0.45)",
                    torch.nonzero(bad).flatten().tolist())
            frames.append(op.restrict(u))
            if callback is not None:
                callback((j + 1) / params.n_records)
        return torch.stack(frames, dim=1)

    def exact(self, params: Wave2DParams, coeffs: Tensor, t: np.ndarray | Tensor) -> Tensor:
        """Closed-form solution for a constant medium (any ``solver``): ``coeffs`` from
        :meth:`sample_inputs`, times ``t`` (T,). Returns (batch, T, n, n) float64."""
        basis, omega = modal_basis(params, coeffs.device)
        t = torch.as_tensor(np.asarray(t, dtype=np.float64))
        return modal_solution(coeffs, basis, omega, t)

    def domain(self, params: Wave2DParams) -> Domain:
        """``[0, t_final] x`` the box of ``boundary``; unknown ``u``; at t=0 ``u = u0`` and
        ``u_t = 0``; ``u = 0`` on the sides of the Dirichlet box, periodic ``x, y`` on the
        torus."""
        def at_rest(fields: Mapping[str, Tensor], coords: Mapping[str, Tensor]) -> Tensor:
            return autodiff.grad(fields["u"], coords["t"])

        conditions = (dirichlet("t=0", "t", 0.0, "u", "u0"),
                      Condition("u_t(t=0)", "t", 0.0, at_rest))
        periodic: tuple[str, ...] = ("x", "y")
        if params.boundary == "dirichlet":
            periodic = ()
            conditions += tuple(dirichlet(f"{c}={v:g}", c, v, "u")
                                for c in ("x", "y") for v in (0.0, 1.0))
        box = {"t": (0.0, params.t_final), "x": (0.0, 1.0), "y": (0.0, 1.0)}
        return Domain(box, ("u",), periodic, conditions)

    def point_sample(self, params: Wave2DParams, inputs: Mapping[str, Tensor]) -> PointSample:
        """Initial displacement ``u0``, speed ``c`` and exact ``u`` of sample 0 (constant
        medium only: other media are grid fields)."""
        if params.medium != "constant":
            raise ValueError(f"medium={params.medium!r}: point samples need medium='constant'")
        coeffs = inputs["coeffs"][0]

        def given(c: Mapping[str, Tensor]) -> dict[str, Tensor]:
            return {"u0": modal_solution_at(params, coeffs, c["x"], c["y"]),
                    "c": torch.full_like(c["x"], params.c)}

        return PointSample(given, lambda c: {
            "u": modal_solution_at(params, coeffs, c["x"], c["y"], c["t"])})

    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: Wave2DParams) -> Tensor:
        """Residual ``u_tt - div(c² grad u)``; two backends.

        Autograd (``coords`` t, x, y require grad, see :mod:`sciops.autodiff`): ``u`` and
        ``c`` are (N,) point values (``c`` may depend on the coordinates). Returns (N,).

        Grid: second differences in time (uniform ``t``, O(dt²)) and the solver's spectral
        operator in space. ``fields["u"]`` (batch, T, n, n), ``fields["c"]`` (batch, n, n)
        on the grid of ``params.boundary`` given by ``coords["x"]``; ``coords["t"]`` (T,).
        Returns (batch, T-2, n, n) on the torus, (batch, T-2, n-2, n-2) interior nodes on the
        Dirichlet box. Units 1/time². Differentiable.
        """
        u, c = fields["u"], fields["c"]
        if autodiff.wants_autograd(coords):
            xs = [coords["x"], coords["y"]]
            c2 = c * c
            flux = [c2 * autodiff.grad(u, x) for x in xs]
            u_t = autodiff.grad(u, coords["t"])
            return autodiff.grad(u_t, coords["t"]) - autodiff.divergence(flux, xs)
        t = torch.as_tensor(coords["t"], dtype=torch.float64)
        x = torch.as_tensor(coords["x"], dtype=torch.float64)
        step = float(t[1] - t[0])
        length = float(x[-1] - x[0]) if params.boundary == "dirichlet" else float(
            (x[1] - x[0]) * x.numel())
        u_tt = (u[:, 2:] - 2 * u[:, 1:-1] + u[:, :-2]) / step**2
        op = WaveOperator(c[:, None].to(u.dtype), params.boundary, length)
        res = u_tt - op.restrict(op(op.extend(u[:, 1:-1])))
        return res[..., 1:-1, 1:-1] if params.boundary == "dirichlet" else res
