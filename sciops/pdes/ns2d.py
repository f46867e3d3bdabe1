"""2D incompressible Navier–Stokes in vorticity form on a periodic box.

    dw/dt + u . grad(w) = nu Laplacian(w) - drag w + f,      u = (d psi/dy, -d psi/dx),
    -Laplacian(psi) = w,

with arrays indexed ``[x, y]``. Two forcings reproduce the standard benchmarks:

* ``"fno"`` — the FNO papers' setting on the unit torus ``[0,1)²``:
  ``f = 0.1 (sin 2 pi (x+y) + cos 2 pi (x+y))``, initial vorticity from the GRF
  ``N(0, 7^3 (-Laplacian + 49 I)^(-2.5))`` (alpha=2.5, tau=7), viscosity 1e-3 .. 1e-5.
* ``"kolmogorov"`` — Kolmogorov flow on ``[0, 2 pi)²`` (Kochkov et al. 2021): body force
  ``sin(4y)`` on the x-velocity, i.e. ``f = -4 cos(4y)`` on the vorticity; ``Re = 1/nu``;
  a linear drag (0.1 in that paper) and a burn-in discard the transient.
* ``"none"`` — unforced decay on the unit torus.

Numerics: pseudo-spectral, 2/3-rule dealiasing of the advection term, time stepping by
:mod:`sciops.integrators` on ``dw_hat/dt = L w_hat + N(w_hat) + f_hat`` with
``L = -nu |k|² - drag`` and ``N = -mask FFT(u . grad w)``. ``scheme="ifrk4"`` (default)
treats viscosity and drag exactly with an integrating factor and advection with classical
RK4; ``"etdrk1"`` .. ``"etdrk4"`` are exponential time differencing Runge–Kutta schemes.
``scheme="fno"`` reproduces the first-order stepper of the FNO data generator bit for bit:
explicit Euler advection and forcing, Crank–Nicolson diffusion (the integrators' ``cn``).
``dt=None`` picks CFL steps ``cfl * dx / max(|u|, |v|)``, shortened so that each record time
is hit exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from sciops import autodiff, integrators, random_fields, spectral
from sciops.derivatives import Derivatives, Pointwise, Spectral
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

# The integrator method of each scheme (the FNO generator's scheme is IMEX Crank–Nicolson).
# Largest CFL number max(|u|, |v|) dt / dx accepted with a fixed dt (checked at each record):
# the upper end of the adaptive ``cfl`` range. The advection term is explicit in every scheme;
# RK4's stability interval on the imaginary axis (2.83) over the largest dealiased advection
# eigenvalue (~ (2/3) pi CFL per axis) puts its limit near 1.4 for one velocity component, so
# runs beyond 2 are unstable or far from converged.
CFL_MAX = 2.0

SCHEMES = {"ifrk4": "ifrk4", "etdrk4": "etdrk4", "etdrk3": "etdrk3", "etdrk2": "etdrk2",
           "etdrk1": "etdrk1", "fno": "cn"}


@dataclass(frozen=True)
class NS2DParams(Params):
    nu: float = param(1e-3, "kinematic viscosity (length²/time)", range=(0.0, None), open_low=True)
    resolution: int = param(256, "solver grid points per axis", range=(8, 8192))
    output_resolution: int = param(
        64, "stored grid points per axis; must divide resolution (stored by subsampling, "
        "as the FNO data)", range=(1, 8192))
    t_final: float = param(50.0, "time span recorded after the burn-in", range=(0.0, None),
                           open_low=True)
    n_records: int = param(50, "stored times after t=0, evenly spaced", range=(1, 1_000_000))
    t_burn_in: float = param(0.0, "time integrated and discarded before t=0", range=(0.0, None))
    forcing: str = param("fno", "forcing and box: 'fno' (unit torus), 'kolmogorov' "
                         "(-4 cos 4y on [0,2pi)^2), 'none' (unit torus)",
                         choices=("fno", "kolmogorov", "none"))
    drag: float = param(0.0, "linear drag coefficient (1/time)", range=(0.0, None))
    scheme: str = param("ifrk4", "time stepper: 'ifrk4' (integrating-factor RK4), 'etdrk1'.."
                        "'etdrk4' (exponential Runge-Kutta) or 'fno' (Euler advection + "
                        "Crank-Nicolson diffusion)", choices=tuple(SCHEMES))
    dt: float | None = param(None, "fixed time step; None = CFL-adaptive. A fixed dt is "
                             f"checked at every record: max|u| dt / dx > {CFL_MAX:g} (beyond "
                             "the explicit advection's stability) is refused",
                             range=(0.0, None), open_low=True)
    cfl: float = param(0.5, "CFL number for the adaptive step", range=(0.0, 2.0), open_low=True)
    ic_alpha: float = param(2.5, "GRF smoothness exponent of the initial vorticity",
                            range=(0.0, 20.0), open_low=True)
    ic_tau: float = param(7.0, "GRF inverse length scale of the initial vorticity",
                          range=(0.0, 1e4))
    ic_sigma: float | None = param(
        None, "GRF amplitude; None = tau^(alpha-1) (FNO, 18.5); at most 1e6 (beyond, the "
        "flow is too fast to step or overflows)", range=(0.0, 1e6), open_low=True)
    store_velocity: bool = param(False, "also store u, v")
    dtype: str = param("float32", "solver and storage precision",
                       choices=("float32", "float64"))

    def validate(self) -> None:
        steps = self.t_final / self.n_records / self.dt if self.dt is not None else 0.0
        if steps > integrators.MAX_STEPS:
            raise ValueError(f"dt={self.dt!r} needs {steps:.3g} steps per record interval "
                             f"t_final/n_records; at most {integrators.MAX_STEPS:.0e}: "
                             f"raise dt (or n_records)")
        if self.resolution % self.output_resolution:
            raise ValueError(
                f"output_resolution={self.output_resolution} must divide "
                f"resolution={self.resolution} (data are stored by subsampling)")

    @property
    def length(self) -> float:
        """Box side: 2 pi for Kolmogorov flow, 1 otherwise."""
        return 2 * math.pi if self.forcing == "kolmogorov" else 1.0

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


def forcing_field(params: NS2DParams, x: Tensor, y: Tensor) -> Tensor:
    """Vorticity forcing on the coordinates ``x`` (n, 1) and ``y`` (1, m); shape (n, m)."""
    if params.forcing == "fno":
        s = 2 * math.pi * (x + y)
        return 0.1 * (torch.sin(s) + torch.cos(s))
    if params.forcing == "kolmogorov":
        return -4.0 * torch.cos(4.0 * y) + 0.0 * x
    return torch.zeros_like(x + y)


class _Operators:
    """Spectral operators of one (resolution, box, dtype, device), built once per solve."""

    def __init__(self, params: NS2DParams, device: torch.device):
        n = params.resolution
        shape, lengths = (n, n), (params.length, params.length)
        dt = params.torch_dtype
        self.shape = shape
        self.kx, self.ky = spectral.wavenumbers(shape, lengths, dt, device, zero_nyquist=True)
        k2 = spectral.wavenumber_magnitude(shape, lengths, dt, device)
        self.inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
        self.linear = -params.nu * k2 - params.drag
        self.mask = spectral.dealias_mask(shape, dt, device)
        self.minus_mask = -self.mask  # (-mask) x == -(mask x) to the bit, in one pass
        x, y = spectral.grid(shape, lengths, dt, device)
        self.f_hat = spectral.rfft(forcing_field(params, x[:, None], y[None, :]), 2)
        self.dx = params.length / n
        self._last: tuple[Tensor, Tensor, Tensor] | None = None  # (w_hat, u, v) of nonlinear

    def ode(self) -> integrators.SemilinearODE:
        """``dw_hat/dt = L w_hat + N(w_hat) + f_hat`` on spectral states (batch, n, n//2+1)."""
        return integrators.SemilinearODE(self.linear, self.nonlinear, self.f_hat, self.rate,
                                         self.size)

    def velocity(self, w_hat: Tensor) -> tuple[Tensor, Tensor]:
        psi = w_hat * self.inv_k2
        uv = spectral.irfft(torch.stack((1j * self.ky * psi, -1j * self.kx * psi)), self.shape)
        return uv[0], uv[1]

    def nonlinear(self, w_hat: Tensor) -> Tensor:
        """``N = -mask FFT(u . grad w)``, the dealiased advection (1/time², spectral)."""
        psi = w_hat * self.inv_k2
        # Four separate inverse FFTs, not one over a stacked tensor: same bits, but on CPU
        # the stacked copy and 4x larger buffers made the step 2.5-3.5x slower at 256².
        u = spectral.irfft(1j * self.ky * psi, self.shape)
        v = spectral.irfft(-1j * self.kx * psi, self.shape)
        wx = spectral.irfft(1j * self.kx * w_hat, self.shape)
        wy = spectral.irfft(1j * self.ky * w_hat, self.shape)
        self._last = (w_hat, u, v)
        return self.minus_mask * spectral.rfft(u * wx + v * wy, 2)

    def rate(self, w_hat: Tensor) -> Tensor:
        """CFL rate ``max(|u|, |v|) / dx`` per sample (1/time), (batch,); the velocity of the
        last :meth:`nonlinear` call is reused when it was of this ``w_hat``."""
        last = self._last
        u, v = last[1:] if last is not None and last[0] is w_hat else self.velocity(w_hat)
        return torch.maximum(u.abs().flatten(1).amax(1), v.abs().flatten(1).amax(1)) / self.dx

    def size(self, w_hat: Tensor) -> Tensor:
        """Largest Fourier amplitude ``max_k |w_hat_k| / n²`` (1/time), (batch,), watched by
        the blow-up guard."""
        return w_hat.abs().flatten(1).amax(1) / w_hat.shape[-2] ** 2


@register
class NS2D(PDE):
    """Incompressible 2D Navier–Stokes, vorticity form (see module docstring)."""

    name = "ns2d"
    Params = NS2DParams
    variables = {
        "vorticity": Variable(("sample", "time", "x", "y"), "1/time",
                              "vorticity w = dv/dx - du/dy"),
        "u": Variable(("sample", "time", "x", "y"), "length/time", "x-velocity"),
        "v": Variable(("sample", "time", "x", "y"), "length/time", "y-velocity"),
    }

    def sample_inputs(self, params: NS2DParams, n: int, generator: torch.Generator
                      ) -> dict[str, Tensor]:
        """Initial vorticity ``w0`` (n, resolution, resolution) from the GRF of ``ic_*``."""
        L = params.length
        w0 = random_fields.grf(n, (params.resolution,) * 2, (L, L), params.ic_alpha,
                               params.ic_tau, params.ic_sigma, generator=generator,
                               dtype=params.torch_dtype)
        return {"w0": w0}

    def stored_variables(self, params: NS2DParams) -> list[str]:
        return ["vorticity", "u", "v"] if params.store_velocity else ["vorticity"]

    def coords(self, params: NS2DParams) -> dict[str, tuple[str, np.ndarray]]:
        m = params.output_resolution
        x = np.arange(m) * (params.length / m)
        t = np.linspace(0.0, params.t_final, params.n_records + 1)
        return {"t": ("time", t), "x": ("x", x), "y": ("y", x.copy())}

    def solve(self, params: NS2DParams, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None) -> dict[str, Tensor]:
        """Solve a batch. ``inputs["w0"]``: (batch, n, n) at ``params.resolution``.

        Returns ``vorticity`` (and ``u``, ``v`` if ``store_velocity``) of shape
        (batch, n_records + 1, m, m), ``m = output_resolution``, including t=0.
        """
        w0 = inputs["w0"]
        n = params.resolution
        if w0.ndim != 3 or tuple(w0.shape[1:]) != (n, n):
            raise ValueError(f"w0: expected shape (batch, {n}, {n}), got {tuple(w0.shape)}")
        w0 = w0.to(params.torch_dtype)
        ops = _Operators(params, w0.device)
        stride = n // params.output_resolution
        # Exact times: each record interval is t_final / n_records to the bit, and the burn-in
        # runs in n_burn chunks of at most one interval (CFL steps chosen afresh per chunk),
        # recorded and dropped.
        interval = Fraction(params.t_final / params.n_records)
        n_burn = math.ceil(params.t_burn_in / interval - 1e-12) if params.t_burn_in > 0 else 0
        chunk = Fraction(params.t_burn_in / n_burn) if n_burn else Fraction(0)
        times = ([chunk * j for j in range(n_burn)]
                 + [chunk * n_burn + interval * j for j in range(params.n_records + 1)])

        def record(w_hat: Tensor) -> dict[str, Tensor]:
            out = {"vorticity": spectral.irfft(w_hat, ops.shape)[:, ::stride, ::stride]}
            if params.store_velocity:
                u, v = ops.velocity(w_hat)
                out["u"], out["v"] = u[:, ::stride, ::stride], v[:, ::stride, ::stride]
            return out

        run = integrators.trajectory(
            ops.ode(), spectral.rfft(w0, 2), times, method=SCHEMES[params.scheme],
            dt=params.dt, cfl=params.cfl, cfl_max=CFL_MAX, name="ns2d", callback=callback,
            hint="lower ic_sigma or the record interval t_final/n_records, or raise cfl")
        frames = [record(w_hat) for w_hat in itertools.islice(run, n_burn, None)]
        return {k: torch.stack([f[k] for f in frames], dim=1) for k in frames[0]}

    def exact(self, params: NS2DParams, t: np.ndarray | Tensor, mode: tuple[int, int] = (1, 1),
              a: float = 1.0, b: float = 0.0) -> Tensor:
        """Closed form for a single-shell flow, where advection vanishes identically.

        Initial vorticity ``a cos(k.x) + b sin(k.x)`` with ``k = 2 pi mode / L``; the forcing
        must lie on the same shell ``|mode|`` (true for 'fno' with mode (1,1) and
        'kolmogorov' with |mode| = 4) or be 'none'. Then
        ``w(t) = w_s + (w0 - w_s) exp(-(nu |k|² + drag) t)`` with ``w_s = f / (nu|k|² + drag)``.
        Returns (len(t), m, m) at ``output_resolution`` in float64.
        """
        shell = {"fno": 2, "kolmogorov": 16, "none": mode[0] ** 2 + mode[1] ** 2}[params.forcing]
        if mode[0] ** 2 + mode[1] ** 2 != shell:
            raise ValueError(f"mode={mode} is not on the forcing's shell |m|^2={shell}")
        m, L = params.output_resolution, params.length
        x = torch.arange(m, dtype=torch.float64) * (L / m)
        X, Y = x[:, None], x[None, :]
        phase = 2 * math.pi / L * (mode[0] * X + mode[1] * Y)
        w0 = a * torch.cos(phase) + b * torch.sin(phase)
        rate = params.nu * (2 * math.pi / L) ** 2 * shell + params.drag
        f = forcing_field(params, X, Y).to(torch.float64)
        ws = f / rate
        t = torch.as_tensor(np.asarray(t, dtype=np.float64))
        return ws + (w0 - ws) * torch.exp(-rate * t)[:, None, None]

    def domain(self, params: NS2DParams) -> Domain:
        """``[0, t_final] x`` the periodic box; unknowns vorticity and streamfunction
        ``psi``; ``vorticity = w0`` at t=0 (``psi`` follows from ``-Laplacian(psi) = w``)."""
        L = params.length
        box = {"t": (0.0, params.t_final), "x": (0.0, L), "y": (0.0, L)}
        return Domain(box, ("vorticity", "psi"), ("x", "y"),
                      (dirichlet("t=0", "t", 0.0, "vorticity", "w0"),))

    def point_sample(self, params: NS2DParams, inputs: Mapping[str, Tensor]) -> PointSample:
        """Sample 0's initial vorticity ``w0`` as the Fourier series it is (exact at any
        point, :func:`fourier_series`). No exact solution."""
        w0, L = inputs["w0"][0], params.length
        return PointSample(lambda c: {"w0": fourier_series(w0, L, c["x"], c["y"])})

    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: NS2DParams) -> Tensor:
        """Residual of the vorticity equation ``w_t - vorticity_rate``; two backends.

        Autograd (``coords`` t, x, y require grad, see :mod:`sciops.autodiff`):
        vorticity–streamfunction form with ``fields["vorticity"]`` and ``fields["psi"]`` (N,)
        point values. Returns (N, 2): the vorticity equation (1/time²) and the Poisson
        equation ``Laplacian(psi) + w`` (1/time).

        Spectral: ``fields["vorticity"]``: (batch, time, m, m) on the periodic grid of
        ``coords`` (``t`` of length ``time``; ``psi`` is computed from ``w``); time
        derivative by second-order finite differences. Returns (batch, time, m, m) in 1/time².
        """
        w = fields["vorticity"]
        if autodiff.wants_autograd(coords):
            t, x, y, psi = coords["t"], coords["x"], coords["y"], fields["psi"]
            d: Derivatives = Pointwise(coords, 2)
            rate = vorticity_rate(w, psi, d, params, x, y)
            return torch.stack((autodiff.grad(w, t) - rate, d.laplacian(psi) + w), dim=-1)
        L = (params.length, params.length)
        t = torch.as_tensor(coords["t"], dtype=w.dtype, device=w.device)
        w_t = torch.gradient(w, spacing=(t,), dim=1, edge_order=2)[0]
        d = Spectral(tuple(w.shape[-2:]), L, w.dtype, w.device)
        x, y = spectral.grid(tuple(w.shape[-2:]), L, w.dtype, w.device)
        return w_t - vorticity_rate(w, -d.inv_laplacian(w), d, params, x[:, None], y[None, :])


def vorticity_rate(w: Tensor, psi: Tensor, d: Derivatives, params: NS2DParams, x: Tensor,
                   y: Tensor) -> Tensor:
    """``dw/dt = -(psi_y w_x - psi_x w_y) + nu Laplacian(w) - drag w + f`` (1/time²), written
    once against a derivative provider ``d`` (grid or pointwise); ``x``, ``y`` broadcast
    against ``w`` (the forcing's coordinates)."""
    w_x, w_y = d.grad(w)
    psi_x, psi_y = d.grad(psi)
    return (psi_x * w_y - psi_y * w_x + params.nu * d.laplacian(w) - params.drag * w
            + forcing_field(params, x, y))


def fourier_series(u: Tensor, length: float, x: Tensor, y: Tensor) -> Tensor:
    """The periodic grid field ``u`` (n, n) on ``[0, length)²`` evaluated at the points
    ``x``, ``y`` (N,) as its trigonometric series ``sum_m c_m exp(i k_m . x)``, ``c`` its
    DFT / n², with each Nyquist term ``exp(i pi n x / length)`` taken as its real part
    ``cos(pi n x / length)``: real, equal to ``u`` on the grid, exact for a field such as
    :func:`sciops.random_fields.grf` that is that series (:func:`sciops.spectral.interpolate`
    drops the Nyquist terms instead). Differentiable in the points; (N,) float64. Cost
    ``N n²``."""
    n = u.shape[-1]
    c = torch.fft.fft2(u.to(torch.float64)) / n**2
    k = (2 * math.pi / length) * torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)

    def basis(p: Tensor) -> Tensor:  # (N, n) complex
        phase = p.to(torch.float64)[:, None] * k
        e = torch.exp(1j * phase)
        if n % 2:
            return e
        h = n // 2
        return torch.cat((e[:, :h], torch.cos(phase[:, h:h + 1]).to(e.dtype), e[:, h + 1:]), 1)

    return ((basis(x) @ c) * basis(y)).sum(1).real
