"""Viscous Burgers ``u_t + (u²/2)_x = nu u_xx`` on ``[0, L)`` (PDEBench's 1D Burgers), from
PDEBench's random initial condition (:mod:`sciops.pdes.catalog.conventions`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sciops.pdes.base import param, register
from sciops.pdes.catalog.conventions import PDEBenchParams, pdebench_initial
from sciops.pdes.semilinear import SemilinearPDE


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
