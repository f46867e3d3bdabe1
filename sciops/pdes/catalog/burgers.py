"""Viscous Burgers ``u_t + (u²/2)_x = nu u_xx`` on ``[0, L)`` (PDEBench's 1D Burgers), and
PDEBench's random initial condition, shared with its advection and diffusion–reaction data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sciops.pdes.base import param, register
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE


@dataclass(frozen=True)
class PDEBenchParams(SemilinearParams.defaults(resolution=1024)):
    """Grid and initial condition of PDEBench's 1D data (Takamoto et al. 2022)."""

    ic_modes: int = param(4, "highest sine wavenumber j of the initial condition "
                          "(PDEBench: 4)", range=(1, 4096))
    ic_kinks: float = param(0.0, "probability of each of PDEBench's non-smooth edits of the "
                            "initial condition, |u| and a tanh window (PDEBench: 0.1; 0 "
                            "keeps every initial condition a smooth sine sum)", range=(0.0, 1.0))


def pdebench_initial(p: PDEBenchParams, n: int, generator: torch.Generator, *,
                     normalize: bool = False) -> Tensor:
    """PDEBench's random 1D initial condition (``init_multi``), ``(n, resolution)``.

    ``u = sum_{j=1}^{J} A_j sin(2 pi c_j j x / L + phi_j)``, ``J = ic_modes``, where two draws
    of ``j`` (with replacement) give the counts ``c_j`` (an undrawn ``j`` adds the constant
    ``A_j sin phi_j``), ``A_j ~ U[0, 1)``, ``phi_j ~ U[0, 2 pi)``. With probability
    ``ic_kinks`` ``u -> |u|``; a random sign; with probability ``ic_kinks`` ``u`` times the
    window ``(tanh((x - a)/w) - tanh((x - b)/w))/2``, ``w = 0.01 L``, ``a/L ~ U[0.1, 0.45)``,
    ``b/L ~ U[0.55, 0.9)``. ``normalize`` rescales each sample to ``[0, 1]`` (PDEBench's
    diffusion–reaction data). PDEBench divides by ``L - dx`` instead of ``L``, which leaves
    its sines slightly aperiodic; here they are periodic.
    """
    g = {"generator": generator, "dtype": torch.float64}
    x = torch.arange(p.resolution, dtype=torch.float64) * (p.length / p.resolution)
    j = torch.arange(1, p.ic_modes + 1)
    counts = (torch.randint(1, p.ic_modes + 1, (n, 2, 1), generator=generator) == j).sum(1)
    amp, phase = torch.rand(n, p.ic_modes, 1, **g), 2 * math.pi * torch.rand(n, p.ic_modes, 1, **g)
    u = (amp * torch.sin((counts * j)[..., None] * x * (2 * math.pi / p.length) + phase)).sum(1)
    u = torch.where(torch.rand(n, 1, **g) < p.ic_kinks, u.abs(), u)
    u = torch.where(torch.rand(n, 1, **g) < 0.5, -u, u)
    a = p.length * (0.1 + 0.35 * torch.rand(n, 1, **g))
    b = p.length * (0.55 + 0.35 * torch.rand(n, 1, **g))
    w = 0.01 * p.length
    window = 0.5 * (torch.tanh((x - a) / w) - torch.tanh((x - b) / w))
    u = torch.where(torch.rand(n, 1, **g) < p.ic_kinks, u * window, u)
    if normalize:
        u = u - u.amin(1, keepdim=True)
        u = u / u.amax(1, keepdim=True)
    return u.to(p.torch_dtype)


@register
class Burgers1D(SemilinearPDE):
    """1D viscous Burgers u_t + (u²/2)_x = nu u_xx (PDEBench)."""

    name, ndim = "burgers1d", 1
    fields = {"u": ("length/time", "velocity")}
    verify_case = {"resolution": 128, "nu": 0.05, "t_final": 0.05, "n_records": 5, "dt": 1e-3}

    @dataclass(frozen=True)
    class Params(PDEBenchParams.defaults(dt=2e-4)):
        nu: float = param(0.01 / math.pi, "viscosity (length²/time; PDEBench's file "
                          "'Nu' is pi nu)", range=(0.0, None))

    def linear(self, u, d, p):
        return {"u": p.nu * d.laplacian(u["u"])}

    def nonlinear(self, u, d, p):
        return {"u": -0.5 * d.x(u["u"] ** 2)}

    def initial(self, p, n, generator):
        return {"u": pdebench_initial(p, n, generator)}

    def exact(self, p, coords):
        """Cole–Hopf: ``u = -2 nu phi_x / phi`` with the heat solution
        ``phi = 1 + sum_j a_j exp(-nu k_j² t) cos(k_j x)``, ``k_j = 2 pi j / L``."""
        t, x = coords["t"], coords["x"]
        phi, phi_x = 1.0, 0.0
        for j, a in ((1, 0.5), (2, 0.3)):
            k = 2 * math.pi * j / p.length
            decay = a * torch.exp(-p.nu * k * k * t)
            phi = phi + decay * torch.cos(k * x)
            phi_x = phi_x - decay * k * torch.sin(k * x)
        return {"u": -2.0 * p.nu * phi_x / phi}
