"""3D incompressible Navier–Stokes on the periodic box ``[0, 2 pi)³``: DNS and Smagorinsky LES.

    du/dt = u x w - grad(p + |u|²/2) + nu Laplacian(u) + div(2 nu_t S),   div(u) = 0,

with velocity ``u = (u, v, w)`` (length/time), vorticity ``w = curl u``, strain rate
``S_ij = (d_j u_i + d_i u_j) / 2`` and arrays indexed ``[x, y, z]``.

* ``mode="dns"``: no model, ``nu_t = 0``.
* ``mode="les"``: Smagorinsky, ``nu_t = (C_s Delta)² |S|`` with ``|S| = sqrt(2 S_ij S_ij)``,
  ``C_s = cs`` (0.17 by default) and ``Delta = 2 pi / n`` the grid spacing of the LES grid.
  Some codes take the dealiased cut-off ``pi / k_c = 3 Delta / 2`` or ``sqrt(2)``-scaled
  widths instead; convert ``cs`` accordingly when comparing.

Initial conditions (``ic``):

* ``"hit"`` — decaying homogeneous isotropic turbulence: a random solenoidal field whose
  shell spectrum is exactly ``E(k) ∝ k⁴ exp(-2 (k/k0)²)`` on integer shells
  ``k = round|k|`` up to the grid's cut-off ``floor(n/3)``, scaled to ``½ <|u|²> = energy``.
  A realization depends on the grid it is drawn on (white noise on that grid, projected
  and rescaled shell by shell).
* ``"tgv"`` — Taylor–Green vortex ``u = sin x cos y cos z, v = -cos x sin y cos z, w = 0``
  (V0 = 1, L = 1, so ``Re = 1/nu``; ``energy`` and ``k0`` are unused).

Ground truth for LES learning ("fDNS"): with ``store_fdns`` the same initial condition is
also solved by DNS at ``dns_resolution`` and every record is filtered with a sharp spectral
cut-off onto the LES's own band, the cube ``|m_i| <= floor(resolution/3)``, then sampled on
the ``resolution`` grid (``u_fdns, v_fdns, w_fdns``). The LES starts from the filtered DNS
initial field, so ``u == u_fdns`` at t = 0.

Stored: ``u, v, w`` (sample, time, x, y, z) of the run on the ``resolution`` grid, its
``energy`` and ``dissipation`` (sample, time) and shell ``spectrum`` (sample, time, k); with
``store_fdns`` also ``u_fdns, v_fdns, w_fdns``, ``energy_fdns``, ``spectrum_fdns`` and the
unfiltered DNS's ``energy_dns``, ``dissipation_dns``.

Numerics: pseudo-spectral, rotational form, 2/3-rule dealiasing of the nonlinear and model
terms, Leray projection; viscosity is integrated exactly by an integrating factor and the
rest by classical RK4 (the ``ifrk4`` of :mod:`sciops.integrators`). The semi-discrete scheme
conserves energy in the nonlinear term exactly, so ``dE/dt = -dissipation`` holds up to the
time-stepping error. ``dt=None`` takes CFL steps ``h`` with ``h * max(sum_i max|u_i| / dx,
6 max nu_t / dx²) <= cfl``, shortened so that records are hit exactly; every sample of a
batch takes the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sciops import autodiff, integrators, spectral
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

_BOX = (2 * math.pi,) * 3
# Symmetric-tensor storage order (xx, yy, zz, xy, xz, yz) and its 3x3 index map.
_SYM = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
_SYM_INDEX = ((0, 3, 4), (3, 1, 5), (4, 5, 2))


def _check_grid(name: str, n: int) -> None:
    # The 2/3 mask keeps |m| <= n/3; for n % 3 == 0 two kept modes m = n/3 sum to 2n/3,
    # which aliases onto the kept -n/3, so such grids are not alias-free.
    if n % 2 or n % 3 == 0:
        raise ValueError(f"{name}={n} must be even and not a multiple of 3 (alias-free 2/3-rule "
                         f"dealiasing), e.g. 32, 64, 128")


@dataclass(frozen=True)
class LES3DParams(Params):
    mode: str = param("les", "'dns' (no model) or 'les' (Smagorinsky)", choices=("dns", "les"))
    ic: str = param("hit", "initial condition: 'hit' (random k⁴exp(-2(k/k0)²) spectrum) or "
                    "'tgv' (Taylor-Green vortex)", choices=("hit", "tgv"))
    nu: float = param(4e-3, "kinematic viscosity (length²/time); Re = 1/nu for 'tgv'",
                      range=(0.0, None), open_low=True)
    resolution: int = param(32, "grid points per axis of the stored run (the LES grid); even, "
                            "not a multiple of 3", range=(8, 2048))
    dns_resolution: int = param(128, "grid points per axis of the DNS filtered to fDNS; even, "
                                "not a multiple of 3, >= resolution with store_fdns",
                                range=(8, 2048))
    store_fdns: bool = param(False, "also solve DNS at dns_resolution and store it filtered "
                             "(u_fdns, v_fdns, w_fdns, ...)")
    cs: float = param(0.17, "Smagorinsky constant C_s (Delta = 2 pi / resolution)",
                      range=(0.0, None))
    t_final: float = param(5.0, "time span recorded (time units)", range=(0.0, None),
                           open_low=True)
    n_records: int = param(50, "stored times after t=0, evenly spaced", range=(1, 1_000_000))
    dt: float | None = param(None, "fixed time step; None = CFL-adaptive", range=(0.0, None),
                             open_low=True)
    cfl: float = param(0.5, "CFL number of the adaptive step", range=(0.0, 1.5), open_low=True)
    energy: float = param(0.5, "'hit': initial kinetic energy ½<|u|²> (length²/time²)",
                          range=(0.0, None), open_low=True)
    k0: float = param(4.0, "'hit': peak wavenumber of the initial spectrum (1/length)",
                      range=(1.0, None))
    dtype: str = param("float32", "solver and storage precision", choices=("float32", "float64"))

    def validate(self) -> None:
        _check_grid("resolution", self.resolution)
        _check_grid("dns_resolution", self.dns_resolution)
        if self.store_fdns and self.dns_resolution < self.resolution:
            raise ValueError(f"dns_resolution={self.dns_resolution} must be >= "
                             f"resolution={self.resolution}")
        cutoff = self.input_resolution // 3
        if self.ic == "hit" and self.k0 >= cutoff:
            raise ValueError(f"k0={self.k0} must be below the initial grid's cut-off "
                             f"floor({self.input_resolution}/3)={cutoff}")

    @property
    def input_resolution(self) -> int:
        """Grid of the initial condition: the DNS grid with fDNS, else ``resolution``."""
        return self.dns_resolution if self.store_fdns else self.resolution

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


def n_shells(n: int) -> int:
    """Number of integer spectrum shells ``0 .. round(sqrt(3) floor(n/3))`` of a dealiased grid."""
    return round(math.sqrt(3) * (n // 3)) + 1


class _Operators:
    """Spectral operators of one grid ``n³`` (box ``[0, 2 pi)³``), built once per solve.

    ``model_coef = (C_s Delta)²`` in length² (0 for DNS). Full-size factors that multiply
    complex spectra are kept complex: mixed real-complex products cost a cast per call.
    """

    def __init__(self, n: int, nu: float, model_coef: float, dtype: torch.dtype,
                 device: torch.device):
        cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
        self.n = n
        self.shape = (n, n, n)
        self.nu = nu
        self.model_coef = model_coef
        self.dx = 2 * math.pi / n
        self.ks = spectral.wavenumbers(self.shape, _BOX, dtype, device, zero_nyquist=True)
        self.ik = tuple(1j * k for k in self.ks)
        self.k2 = spectral.wavenumber_magnitude(self.shape, _BOX, dtype, device)
        self.mask = spectral.dealias_mask(self.shape, dtype, device)
        self.mask_c = self.mask.to(cdtype)
        k2 = torch.where(self.k2 > 0, self.k2, 1.0)
        self.k_over_k2 = tuple((k * self.mask / k2).to(cdtype) for k in self.ks)
        # rfft layout: interior columns of the halved axis stand for two conjugate modes.
        weight = torch.full((n // 2 + 1,), 2.0, dtype=dtype, device=device)
        weight[0] = weight[-1] = 1.0
        self.weight = weight * self.mask
        self.shell = torch.sqrt(self.k2).round().long().clamp(max=n_shells(n) - 1)

    def physical(self, u_hat: Tensor) -> Tensor:
        return spectral.irfft(u_hat, self.shape)

    def project(self, f_hat: Tensor) -> Tensor:
        """Dealiased divergence-free part of ``(B, 3, *spectral)`` (a new tensor)."""
        return self.project_(f_hat.clone())

    def project_(self, f_hat: Tensor) -> Tensor:
        """In-place :meth:`project`: ``mask (f - k (k.f) / |k|²)``, the Leray projection of
        :func:`sciops.spectral.leray_projection` fused with dealiasing for the hot loop."""
        kf = f_hat[:, 0] * self.k_over_k2[0]
        kf.addcmul_(f_hat[:, 1], self.k_over_k2[1]).addcmul_(f_hat[:, 2], self.k_over_k2[2])
        f_hat.mul_(self.mask_c)
        for i, k in enumerate(self.ks):
            f_hat[:, i].sub_(kf * k)
        return f_hat

    def curl_hat(self, u_hat: Tensor, out: Tensor) -> Tensor:
        """Spectral vorticity ``i k x u_hat`` written into ``out`` (B, 3, *spectral)."""
        ik = self.ik
        for i, (j, m) in enumerate(((1, 2), (2, 0), (0, 1))):
            torch.mul(u_hat[:, m], ik[j], out=out[:, i]).sub_(u_hat[:, j] * ik[m])
        return out

    def velocity_gradient(self, u_hat: Tensor) -> Tensor:
        """``A[:, i, j] = d_j u_i`` in physical space, ``(B, 3, 3, n, n, n)`` (1/time)."""
        a_hat = torch.stack([u_hat * ik for ik in self.ik], dim=2)
        return self.physical(a_hat)

    def shell_sum(self, density: Tensor) -> Tensor:
        """Sum of a spectral density ``(B, *spectral)`` over integer shells: ``(B, shells)``."""
        flat = (density * self.weight).flatten(1)
        out = flat.new_zeros(flat.shape[0], n_shells(self.n))
        return out.index_add_(1, self.shell.flatten(), flat)


def _strain(a: Tensor) -> Tensor:
    """Strain ``S`` from ``A = grad u``: ``(B, 3, 3, ...) -> (B, 6, ...)`` in _SYM order."""
    return torch.stack([0.5 * (a[:, i, j] + a[:, j, i]) for i, j in _SYM], dim=1)


def _strain_norm(s: Tensor) -> Tensor:
    """``|S| = sqrt(2 S_ij S_ij)`` from the 6 stored components, ``(B, ...)``."""
    sq = (s[:, :3] ** 2).sum(1) + 2.0 * (s[:, 3:] ** 2).sum(1)
    return torch.sqrt(2.0 * sq)


def _curl(a: Tensor) -> Tensor:
    """Vorticity from ``A = grad u``: ``(B, 3, 3, ...) -> (B, 3, ...)``."""
    return torch.stack((a[:, 2, 1] - a[:, 1, 2], a[:, 0, 2] - a[:, 2, 0],
                        a[:, 1, 0] - a[:, 0, 1]), dim=1)


def _cross(u: Tensor, w: Tensor) -> Tensor:
    """``u x w`` of ``(B, 3, ...)`` fields, computed in place in one new buffer (or by
    ``torch.linalg.cross`` when autograd records: it refuses ``out=`` writes)."""
    if torch.is_grad_enabled() and (u.requires_grad or w.requires_grad):
        return torch.linalg.cross(u, w, dim=1)
    out = torch.empty_like(u)
    for i, (j, m) in enumerate(((1, 2), (2, 0), (0, 1))):
        torch.mul(u[:, j], w[:, m], out=out[:, i]).addcmul_(u[:, m], w[:, j], value=-1)
    return out


def _div_sym(ops: _Operators, t_hat: Tensor) -> Tensor:
    """``(div T)_i = d_j T_ij`` of a symmetric tensor, spectral: (B, 6, ...) -> (B, 3, ...)."""
    return torch.stack([sum(t_hat[:, _SYM_INDEX[i][j]] * ops.ik[j] for j in range(3))
                        for i in range(3)], dim=1)


def _model_forcing(ops: _Operators, u: Tensor, a: Tensor, coef: float
                   ) -> tuple[Tensor, Tensor]:
    """Spectral ``u x w + div(2 nu_t S)`` (not projected, not dealiased) from physical ``u``
    (B, 3, ...) and ``A = grad u`` (B, 3, 3, ...), with ``nu_t = coef |S|``; also ``nu_t``."""
    s = _strain(a)
    nu_t = coef * _strain_norm(s)
    f_hat = spectral.rfft(_cross(u, _curl(a)), 3)
    if coef != 0.0:
        f_hat = f_hat + _div_sym(ops, spectral.rfft(2.0 * nu_t[:, None] * s, 3))
    return f_hat, nu_t


def tendency(ops: _Operators, u_hat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nonlinear + model tendency ``P[u x w + div(2 nu_t S)]`` (dealiased), in spectral space.

    ``u_hat``: ``(B, 3, n, n, n//2+1)``. Returns the tendency (same shape, length/time²), the
    per-sample CFL speed ``sum_i max|u_i|`` (length/time) and ``max nu_t`` (length²/time).
    """
    if ops.model_coef == 0.0:
        # DNS needs only the curl: 6 inverse transforms instead of 12
        buf = u_hat.new_empty((u_hat.shape[0], 6, *u_hat.shape[2:]))
        buf[:, :3] = u_hat
        ops.curl_hat(u_hat, out=buf[:, 3:])
        uw = ops.physical(buf)
        u = uw[:, :3]
        f_hat = spectral.rfft(_cross(u, uw[:, 3:]), 3)
        nu_t_max = u.new_zeros(u.shape[0])
    else:
        u = ops.physical(u_hat)
        f_hat, nu_t = _model_forcing(ops, u, ops.velocity_gradient(u_hat), ops.model_coef)
        nu_t_max = nu_t.flatten(1).amax(1)
    return ops.project_(f_hat), _max_speed(u), nu_t_max


def _max_speed(u: Tensor) -> Tensor:
    """Per-sample CFL speed ``sum_i max|u_i|`` of physical ``(B, 3, ...)``: ``(B,)``, an upper
    bound of ``max(|u|+|v|+|w|)`` that needs no temporary field."""
    dims = tuple(range(2, u.ndim))
    return torch.maximum(u.amax(dims), -u.amin(dims)).sum(1)


def diagnostics(ops: _Operators, u_hat: Tensor) -> dict[str, Tensor]:
    """Energy ``½<|u|²>`` (B,), dissipation ``nu <|grad u|²> + <2 nu_t S_ij S_ij>`` (B,) and
    shell spectrum ``E(k) = ½ sum_{round|k|=k} |û|² / n⁶`` (B, shells); ``<.>`` is the box mean.

    ``u_hat`` must lie in the dealiased band (every state of the solver does), where these
    sums are exactly the grid means and ``dE/dt = -dissipation`` holds for the semi-discrete
    scheme.
    """
    power = u_hat.real.square().sum(1) + u_hat.imag.square().sum(1)
    scale = 0.5 / ops.n**6
    spectrum = ops.shell_sum(power) * scale
    resolved = 2.0 * ops.nu * scale * (power * ops.k2 * ops.weight).flatten(1).sum(1)
    out = {"energy": spectrum.sum(1), "spectrum": spectrum, "dissipation": resolved}
    if ops.model_coef != 0.0:
        s_norm = _strain_norm(_strain(ops.velocity_gradient(u_hat)))
        # 2 nu_t S_ij S_ij = nu_t |S|² = (C_s Delta)² |S|³
        out["dissipation"] = resolved + ops.model_coef * (s_norm**3).flatten(1).mean(1)
    return out


def truncate(u_hat: Tensor, n_in: int, n_out: int) -> Tensor:
    """Sharp spectral filter of an ``n_in³`` rfft field onto the cube ``|m_i| <= floor(n_out/3)``,
    returned on the ``n_out³`` rfft layout with the unnormalized-FFT scaling of that grid.

    ``u_hat``: ``(*b, n_in, n_in, n_in//2+1)`` with ``n_out <= n_in``.
    """
    keep = n_out // 3
    out = u_hat.new_zeros((*u_hat.shape[:-3], n_out, n_out, n_out // 2 + 1))
    lo, hi_in, hi_out = slice(0, keep + 1), slice(n_in - keep, n_in), slice(n_out - keep, n_out)
    for sx, dx in ((lo, lo), (hi_in, hi_out)):
        for sy, dy in ((lo, lo), (hi_in, hi_out)):
            out[..., dx, dy, : keep + 1] = u_hat[..., sx, sy, : keep + 1]
    return out * (n_out / n_in) ** 3


def ode(ops: _Operators) -> integrators.SemilinearODE:
    """``du_hat/dt = -nu |k|² u_hat + N(u_hat)`` with ``N`` the projected, dealiased
    :func:`tendency`, on spectral states ``(B, 3, n, n, n//2+1)``; CFL rate
    ``max(sum_i max|u_i| / dx, 6 max nu_t / dx²)`` (1/time), reused from ``N`` of the same
    state; blow-up watched on ``max |u_hat| / n³`` (length/time)."""
    last: dict[str, Tensor] = {}

    def nonlinear(u_hat: Tensor) -> Tensor:
        f_hat, last["speed"], last["nu_t"] = tendency(ops, u_hat)
        last["state"] = u_hat
        return f_hat

    def rate(u_hat: Tensor) -> Tensor:
        if last.get("state") is not u_hat:
            nonlinear(u_hat)
        return torch.maximum(last["speed"] / ops.dx, 6.0 * last["nu_t"] / ops.dx**2)

    def size(u_hat: Tensor) -> Tensor:
        return u_hat.abs().flatten(1).amax(1) / ops.n**3

    return integrators.SemilinearODE(-ops.nu * ops.k2, nonlinear, rate=rate, size=size)


def trajectory(ops: _Operators, u_hat: Tensor, times: Sequence[float], *, dt: float | None,
               cfl: float) -> Iterator[Tensor]:
    """Yield the state ``u_hat`` (B, 3, spectral) at each of ``times``, starting with the
    given state at ``times[0]``, by :func:`sciops.integrators.trajectory` with ``ifrk4``;
    raises :class:`~sciops.pdes.base.SolverDiverged` on blow-up."""
    return integrators.trajectory(ode(ops), u_hat, times, method="ifrk4", dt=dt, cfl=cfl,
                                  name="les3d", hint="lower energy (hit) or the record "
                                  "interval t_final/n_records, or raise cfl")


def taylor_green(n: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Taylor–Green vortex (V0 = 1, L = 1) on the ``n³`` grid: ``(3, n, n, n)``."""
    x, y, z = spectral.grid((n, n, n), _BOX, torch.float64)
    X, Y, Z = x[:, None, None], y[None, :, None], z[None, None, :]
    u = torch.sin(X) * torch.cos(Y) * torch.cos(Z)
    v = -torch.cos(X) * torch.sin(Y) * torch.cos(Z)
    return torch.stack((u, v, torch.zeros_like(u))).to(dtype)


def hit_target_spectrum(params: LES3DParams, n: int) -> np.ndarray:
    """Target shell spectrum ``E(k) ∝ k⁴ exp(-2 (k/k0)²)`` on integer shells ``0..n_shells(n)-1``,
    zero beyond ``floor(n/3)``, summing to ``params.energy``."""
    k = np.arange(n_shells(n), dtype=np.float64)
    e = k**4 * np.exp(-2.0 * (k / params.k0) ** 2) * (k <= n // 3)
    return e * (params.energy / e.sum())


def hit_field(params: LES3DParams, n_samples: int, n: int, generator: torch.Generator) -> Tensor:
    """Random solenoidal fields with the exact shell spectrum of :func:`hit_target_spectrum`,
    truncated to the sphere ``|k| <= floor(n/3)``: ``(n_samples, 3, n, n, n)`` in float64.

    White noise is drawn on the CPU from ``generator``, projected, then each integer shell is
    rescaled to its target energy.
    """
    ops = _Operators(n, params.nu, 0.0, torch.float64, torch.device("cpu"))
    white = torch.randn((n_samples, 3, n, n, n), generator=generator, dtype=torch.float64)
    u_hat = ops.project(spectral.rfft(white, 3))
    u_hat = u_hat * (ops.k2 <= (n // 3) ** 2)
    target = torch.as_tensor(hit_target_spectrum(params, n))
    have = ops.shell_sum(u_hat.abs().square().sum(1)) * (0.5 / n**6)
    gain = torch.where(have > 0, torch.sqrt(target / torch.where(have > 0, have, 1.0)), 0.0)
    u_hat = u_hat * gain[:, ops.shell][:, None]
    return ops.physical(u_hat)


@register
class LES3D(PDE):
    """3D incompressible Navier–Stokes, DNS or Smagorinsky LES of decaying turbulence."""

    name = "les3d"
    Params = LES3DParams
    _field = ("sample", "time", "x", "y", "z")
    variables = {
        "u": Variable(_field, "length/time", "x-velocity of the run (LES or DNS)"),
        "v": Variable(_field, "length/time", "y-velocity of the run (LES or DNS)"),
        "w": Variable(_field, "length/time", "z-velocity of the run (LES or DNS)"),
        "energy": Variable(("sample", "time"), "length²/time²", "kinetic energy ½<|u|²>"),
        "dissipation": Variable(("sample", "time"), "length²/time³",
                                "dissipation nu<|grad u|²> + <2 nu_t S_ij S_ij> "
                                "(resolved + model)"),
        "spectrum": Variable(("sample", "time", "k"), "length³/time²",
                             "shell energy spectrum E(k), sum_k E = energy"),
        "u_fdns": Variable(_field, "length/time", "x-velocity of the DNS, sharp-filtered"),
        "v_fdns": Variable(_field, "length/time", "y-velocity of the DNS, sharp-filtered"),
        "w_fdns": Variable(_field, "length/time", "z-velocity of the DNS, sharp-filtered"),
        "energy_fdns": Variable(("sample", "time"), "length²/time²",
                                "kinetic energy of the filtered DNS"),
        "spectrum_fdns": Variable(("sample", "time", "k"), "length³/time²",
                                  "shell energy spectrum of the filtered DNS"),
        "energy_dns": Variable(("sample", "time"), "length²/time²",
                               "kinetic energy of the unfiltered DNS"),
        "dissipation_dns": Variable(("sample", "time"), "length²/time³",
                                    "dissipation nu<|grad u|²> of the unfiltered DNS"),
    }

    def sample_inputs(self, params: LES3DParams, n: int, generator: torch.Generator
                      ) -> dict[str, Tensor]:
        """Initial velocity ``u0`` (n, 3, m, m, m) on ``m = params.input_resolution``."""
        m = params.input_resolution
        if params.ic == "tgv":
            u0 = taylor_green(m).expand(n, -1, -1, -1, -1).clone()
        else:
            u0 = hit_field(params, n, m, generator)
        return {"u0": u0.to(params.torch_dtype)}

    def stored_variables(self, params: LES3DParams) -> list[str]:
        """The run's fields and diagnostics; the ``*_fdns``/``*_dns`` ones with ``store_fdns``."""
        return [v for v in self.variables
                if params.store_fdns or not v.endswith(("_fdns", "_dns"))]

    def coords(self, params: LES3DParams) -> dict[str, tuple[str, np.ndarray]]:
        n = params.resolution
        x = np.arange(n) * (2 * math.pi / n)
        t = np.linspace(0.0, params.t_final, params.n_records + 1)
        return {"t": ("time", t), "x": ("x", x), "y": ("y", x.copy()), "z": ("z", x.copy()),
                "k": ("k", np.arange(n_shells(n), dtype=np.float64))}

    def operators(self, params: LES3DParams, n: int, model: bool, device: torch.device,
                  dtype: torch.dtype | None = None) -> _Operators:
        """Operators of the ``n³`` grid; ``model`` switches on Smagorinsky with Delta = 2 pi/n."""
        coef = (params.cs * 2 * math.pi / n) ** 2 if model else 0.0
        return _Operators(n, params.nu, coef, dtype or params.torch_dtype, device)

    def solve(self, params: LES3DParams, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None) -> dict[str, Tensor]:
        """Solve a batch. ``inputs["u0"]``: (batch, 3, m, m, m), ``m = params.input_resolution``;
        it is projected onto divergence-free, dealiased modes first.

        Returns ``u, v, w`` (batch, n_records + 1, n, n, n) with ``n = resolution``, ``energy``
        and ``dissipation`` (batch, n_records + 1), ``spectrum`` (batch, n_records + 1, shells),
        and with ``store_fdns`` the ``*_fdns`` / ``*_dns`` counterparts.
        """
        u0 = inputs["u0"]
        m, n = params.input_resolution, params.resolution
        if u0.ndim != 5 or tuple(u0.shape[1:]) != (3, m, m, m):
            raise ValueError(f"u0: expected shape (batch, 3, {m}, {m}, {m}), got {tuple(u0.shape)}")
        u0_hat = spectral.rfft(u0.to(params.torch_dtype), 3)
        times = self.coords(params)["t"][1]
        # progress weights ~ cost: grid points of each run, LES steps ~2x dearer than DNS
        costs = [n**3 * (2 if params.mode == "les" else 1)] + (
            [m**3] if params.store_fdns else [])

        def progress(i: int) -> Callable[[int], None] | None:
            if callback is None:
                return None
            return lambda j: callback((sum(costs[:i]) + costs[i] * j / (len(times) - 1))
                                      / sum(costs))

        ops = self.operators(params, n, params.mode == "les", u0.device)
        start = ops.project(truncate(u0_hat, m, n))
        run = trajectory(ops, start, times, dt=params.dt, cfl=params.cfl)
        out = _records(ops, run, "", progress(0))
        if params.store_fdns:
            dns = self.operators(params, m, False, u0.device)
            full: list[dict[str, Tensor]] = []

            def filtered() -> Iterator[Tensor]:
                # keep the DNS's own diagnostics, store only its filtered state
                for s in trajectory(dns, dns.project(u0_hat), times, dt=params.dt, cfl=params.cfl):
                    full.append(diagnostics(dns, s))
                    yield truncate(s, m, n)

            out.update(_records(ops, filtered(), "_fdns", progress(1), with_dissipation=False))
            out["energy_dns"] = torch.stack([d["energy"] for d in full], 1)
            out["dissipation_dns"] = torch.stack([d["dissipation"] for d in full], 1)
        return out

    def exact(self, params: LES3DParams, t: np.ndarray | Tensor, m: int = 1,
              amplitude: float = 1.0) -> Tensor:
        """Decaying shear wave ``u = a sin(m y) exp(-nu m² t) x``, ``v = w = 0``: advection is
        a pure gradient and vanishes after projection, so it solves DNS exactly (not LES:
        ``nu_t`` is nonzero). Returns (len(t), 3, n, n, n) at ``resolution`` in float64."""
        if params.mode == "les" and params.cs > 0:
            raise ValueError("exact: the shear wave is exact only for mode='dns' (or cs=0)")
        n = params.resolution
        y = spectral.grid((n, n, n), _BOX, torch.float64)[1]
        t = torch.as_tensor(np.asarray(t, dtype=np.float64))
        decay = amplitude * torch.exp(-params.nu * m**2 * t)
        u = decay[:, None, None, None] * torch.sin(m * y)[None, None, :, None].expand(-1, n, n, n)
        zeros = torch.zeros_like(u)
        return torch.stack((u, zeros, zeros), dim=1)

    def domain(self, params: LES3DParams) -> Domain:
        """``[0, t_final] x [0, 2 pi)³`` periodic; unknowns velocity ``u, v, w`` and kinematic
        pressure ``p``; the velocity equals ``u0, v0, w0`` at t=0."""
        box = {"t": (0.0, params.t_final), **{c: (0.0, _BOX[0]) for c in ("x", "y", "z")}}
        initial = tuple(dirichlet(f"{c}(t=0)", "t", 0.0, c, f"{c}0") for c in ("u", "v", "w"))
        return Domain(box, ("u", "v", "w", "p"), ("x", "y", "z"), initial)

    def point_sample(self, params: LES3DParams, inputs: Mapping[str, Tensor]) -> PointSample:
        """Refused: the initial velocity is a grid field."""
        raise NotImplementedError("les3d: its initial velocity is a grid field (sampled on "
                                  "input_resolution³) with no point evaluation; its LES "
                                  "residual has an autograd form (pointwise_residual) for "
                                  "fields given at points")

    def pointwise_residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                           params: LES3DParams) -> Tensor:
        """Autograd residual in velocity–pressure form (see :mod:`sciops.autodiff`).

        ``fields`` u, v, w, p and ``coords`` t, x, y, z are (N,) point values. Returns (N, 4):
        the momentum equations ``du_i/dt + u_j d_j u_i + d_i p - nu Laplacian(u_i) -
        d_j(2 nu_t S_ij)`` (length/time²) and the continuity equation ``d_j u_j`` (1/time),
        with ``nu_t = (C_s Delta)² |S|``, ``Delta = 2 pi / resolution`` in mode 'les'.
        """
        xs = [coords[c] for c in ("x", "y", "z")]
        vel = [fields[c] for c in ("u", "v", "w")]
        a = [[autodiff.grad(ui, xj) for xj in xs] for ui in vel]  # a[i][j] = d_j u_i
        coef = (params.cs * _BOX[0] / params.resolution) ** 2 if params.mode == "les" else 0.0
        strain = [[0.5 * (a[i][j] + a[j][i]) for j in range(3)] for i in range(3)]
        sq = sum(s * s for row in strain for s in row)
        # clamp: the gradient of sqrt at |S| = 0 is infinite (times a zero factor: NaN)
        nu_t = coef * torch.sqrt((2.0 * sq).clamp_min(torch.finfo(sq.dtype).tiny))
        out = []
        for i, ui in enumerate(vel):
            momentum = (autodiff.grad(ui, coords["t"]) + sum(u * g for u, g in zip(vel, a[i]))
                        + autodiff.grad(fields["p"], xs[i])
                        - params.nu * autodiff.laplacian(ui, xs))
            if coef:
                momentum = momentum - autodiff.divergence([2.0 * nu_t * s for s in strain[i]], xs)
            out.append(momentum)
        out.append(a[0][0] + a[1][1] + a[2][2])
        return torch.stack(out, dim=-1)

    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: LES3DParams) -> Tensor:
        """Residual of the momentum equation; two backends.

        Autograd (``coords`` require grad): :meth:`pointwise_residual`, (N, 4).

        Grid: the projected momentum equation,
        ``du/dt - P[u x w + div(2 nu_t S)] - nu Laplacian(u)`` (``P`` the Leray projection; no
        dealiasing inside: the PDE itself), restricted to the LES band (the 2/3-rule cube
        ``|m_i| <= n/3``): the Galerkin residual the LES solver zeroes, so it vanishes on solver
        frames up to the time differencing (the nonlinear term of a band-limited field has modes
        outside the band, which the LES drops). ``fields["u"], ["v"], ["w"]``: (batch, time, n,
        n, n) on ``coords["t"]``; ``nu_t`` uses Delta = 2 pi / n in mode 'les'. Time derivative
        by second-order finite differences. Returns (batch, time, 3, n, n, n) in length/time².
        """
        if autodiff.wants_autograd(coords):
            return self.pointwise_residual(fields, coords, params)
        vel = torch.stack([fields[c] for c in ("u", "v", "w")], dim=2)
        n = vel.shape[-1]
        t = torch.as_tensor(coords["t"], dtype=vel.dtype, device=vel.device)
        ops = self.operators(params, n, params.mode == "les", vel.device, vel.dtype)
        u_hat = spectral.rfft(vel.flatten(0, 1), 3)
        f_hat, _ = _model_forcing(ops, vel.flatten(0, 1), ops.velocity_gradient(u_hat),
                                  ops.model_coef)
        u_t = spectral.rfft(torch.gradient(vel, spacing=(t,), dim=1, edge_order=2)[0]
                            .flatten(0, 1), 3)
        r_hat = (u_t - ops.project(f_hat) + params.nu * ops.k2 * u_hat) * ops.mask
        return ops.physical(r_hat).view_as(vel)

    def initial(self, params: LES3DParams, n: int, generator: torch.Generator
                ) -> dict[str, Tensor]:
        """``n`` random initial velocities ``u, v, w``, each ``(n, m, m, m)`` on the LES grid
        ``m = resolution``: :meth:`sample_inputs` (same generator, same field) as the solver
        starts from it, projected onto the LES band (truncated from the DNS grid with fDNS)."""
        u0 = self.sample_inputs(params, n, generator)["u0"]
        ops = self.operators(params, params.resolution, False, u0.device, u0.dtype)
        u_hat = truncate(spectral.rfft(u0, 3), params.input_resolution, params.resolution)
        u = ops.physical(ops.project(u_hat))
        return {c: u[:, i] for i, c in enumerate("uvw")}

    def project(self, fields: Mapping[str, Tensor], params: LES3DParams) -> dict[str, Tensor]:
        """The space LES solutions live in: the divergence-free part of velocities
        ``fields["u"], ["v"], ["w"]`` (..., n, n, n) in the LES band (the 2/3-rule cube
        ``|m_i| <= n/3``); other keys are dropped. Learned predictors need not learn it."""
        vel = torch.stack([fields[c] for c in ("u", "v", "w")], dim=-4)
        n = vel.shape[-1]
        ops = self.operators(params, n, False, vel.device, vel.dtype)
        u_hat = ops.project(spectral.rfft(vel.reshape(-1, 3, n, n, n), 3))
        out = ops.physical(u_hat).view_as(vel)
        return {c: out[..., i, :, :, :] for i, c in enumerate("uvw")}


def _records(ops: _Operators, states: Iterable[Tensor], suffix: str,
             callback: Callable[[int], None] | None, *, with_dissipation: bool = True
             ) -> dict[str, Tensor]:
    """Stored variables of a trajectory of spectral states on the grid of ``ops``;
    ``callback`` gets the index of each record once it is done."""
    names = ["energy", "spectrum"] + (["dissipation"] if with_dissipation else [])
    frames: dict[str, list[Tensor]] = {k: [] for k in ["vel", *names]}
    for s in states:
        diag = diagnostics(ops, s)
        frames["vel"].append(ops.physical(s))
        for k in names:
            frames[k].append(diag[k])
        if callback is not None:
            callback(len(frames["vel"]) - 1)
    vel = torch.stack(frames["vel"], dim=1)
    out = {f"{c}{suffix}": vel[:, :, i] for i, c in enumerate("uvw")}
    out.update({f"{k}{suffix}": torch.stack(frames[k], 1) for k in names})
    return out
