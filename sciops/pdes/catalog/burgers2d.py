"""2D viscous Burgers ``u_t + (u . grad) u = nu Lap u`` for the velocity ``(u, v)`` on
``[0, L)²`` (the 2D coupled Burgers of Geneva & Zabaras 2020, J. Comput. Phys. 403: 109056)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sciops.pdes.base import param, register
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, smooth_random


@register
class Burgers2D(SemilinearPDE):
    """2D viscous Burgers u_t + (u.grad) u = nu Lap u for the velocity (u, v)."""

    name, ndim = "burgers2d", 2
    fields = {"u": ("length/time", "x-velocity"), "v": ("length/time", "y-velocity")}
    verify_case = {"nu": 0.1, "resolution": 32, "ic_modes": 1, "t_final": 0.2,
                   "n_records": 10, "dt": 0.01}

    @dataclass(frozen=True)
    class Params(SemilinearParams.defaults(resolution=64, ic_modes=4)):
        nu: float = param(0.02, "viscosity (length²/time)", range=(0.0, None))

    def linear(self, u, d, p):
        return {k: p.nu * d.laplacian(u[k]) for k in ("u", "v")}

    def nonlinear(self, u, d, p):
        return {k: -(u["u"] * d.x(u[k]) + u["v"] * d.y(u[k])) for k in ("u", "v")}

    def initial(self, p, n, generator):
        return {k: smooth_random(p, n, generator, 2) for k in ("u", "v")}

    def exact(self, p, coords):
        """Cole–Hopf: ``(u, v) = -2 nu grad(phi) / phi`` with the positive heat solution
        ``phi = 1 + sum_j a_j exp(-nu |k_j|² t) cos(k_j . x)``, ``k_j = 2 pi m_j / L``."""
        t, x, y = coords["t"], coords["x"], coords["y"]
        phi, phi_x, phi_y = 1.0, 0.0, 0.0
        for (m, n), a in (((1, 0), 0.4), ((0, 1), 0.3), ((1, -1), 0.2)):
            k, l = 2 * math.pi * m / p.length, 2 * math.pi * n / p.length
            decay = a * torch.exp(-p.nu * (k * k + l * l) * t)
            phi = phi + decay * torch.cos(k * x + l * y)
            phi_x = phi_x - decay * k * torch.sin(k * x + l * y)
            phi_y = phi_y - decay * l * torch.sin(k * x + l * y)
        return {"u": -2.0 * p.nu * phi_x / phi, "v": -2.0 * p.nu * phi_y / phi}
