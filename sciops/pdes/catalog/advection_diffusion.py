"""Advection–diffusion ``u_t + c . grad u = nu Lap u`` with a constant velocity ``c`` on the
periodic box ``[0, L)^d``, d = 1, 2, 3 (APEBench's ``adv_diff`` scenarios). Linear: the
exponential integrators (ETDRK1-4, IFRK4) are exact for any ``dt``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sciops.pdes.base import param
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, register_dims, smooth_random


@register_dims("advdiff")
class AdvectionDiffusion(SemilinearPDE):
    """Advection-diffusion u_t + c.grad u = nu Lap u, constant c, periodic, 1-3D."""

    fields = {"u": ("1", "transported concentration (scaled)")}
    verify_case = {"resolution": 24, "ic_modes": 3, "t_final": 0.2, "n_records": 10}

    @dataclass(frozen=True)
    class Params(SemilinearParams.defaults(resolution=64, n_records=20, dt=0.05)):
        nu: float = param(0.01, "diffusivity (length²/time)", range=(0.0, None))
        velocity: tuple | None = param(None, "advection velocity c, one component per axis "
                                       "(length/time); None: 0.25 along every axis")

    def make_params(self, values=None):
        """The parameters, with ``velocity`` checked against the dimension."""
        p = super().make_params(values)
        self.velocity(p)
        return p

    def velocity(self, p):
        """``c`` (length/time), one component per axis."""
        c = p.velocity or (0.25,) * self.ndim
        if len(c) != self.ndim:
            raise ValueError(f"velocity={c} needs {self.ndim} component(s) on a {self.ndim}D box")
        return c

    def linear(self, u, d, p):
        c_grad_u = sum(c_i * g for c_i, g in zip(self.velocity(p), d.grad(u["u"])))
        return {"u": p.nu * d.laplacian(u["u"]) - c_grad_u}

    def initial(self, p, n, generator):
        return {"u": smooth_random(p, n, generator, self.ndim)}

    def exact(self, p, coords):
        """Transported decaying modes ``u = sum_j a_j exp(-nu |k_j|² t) sin(k_j . (x - c t)
        + 0.3)``, the wavevectors ``k_j = 2 pi m_j / L`` cut to the box's axes."""
        t, c = coords["t"], self.velocity(p)
        u = 0.0
        for m, a in (((1, 2, 1), 1.0), ((3, -1, 2), 0.5)):
            k = [2 * math.pi * m_i / p.length for m_i in m[:self.ndim]]
            phase = sum(k_i * (coords[axis] - c_i * t)
                        for k_i, c_i, axis in zip(k, c, self.axes))
            u = u + a * torch.exp(-p.nu * sum(k_i**2 for k_i in k) * t) * torch.sin(phase + 0.3)
        return {"u": u}
