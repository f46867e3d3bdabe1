"""Heat equation ``u_t = nu Lap u`` on the periodic box ``[0, L)^d``, d = 1, 2, 3
(APEBench's ``diff`` scenarios). Linear: the exponential integrators (ETDRK1-4, IFRK4) are
exact for any ``dt``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sciops.pdes.base import param
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, register_dims, smooth_random


@register_dims("heat")
class Heat(SemilinearPDE):
    """Heat equation u_t = nu Lap u, periodic, 1-3D."""

    fields = {"u": ("1", "temperature (scaled)")}
    verify_case = {"resolution": 24, "ic_modes": 3, "t_final": 0.2, "n_records": 10}

    @dataclass(frozen=True)
    class Params(SemilinearParams.defaults(resolution=64, n_records=20, dt=0.05)):
        nu: float = param(0.01, "diffusivity (length²/time)", range=(0.0, None))

    def linear(self, u, d, p):
        return {"u": p.nu * d.laplacian(u["u"])}

    def initial(self, p, n, generator):
        return {"u": smooth_random(p, n, generator, self.ndim)}

    def exact(self, p, coords):
        """Decaying modes ``u = sum_j a_j exp(-nu |k_j|² t) sin(k_j . x + 0.3)``, the
        wavevectors ``k_j = 2 pi m_j / L`` cut to the box's axes."""
        u = 0.0
        for m, a in (((1, 2, 1), 1.0), ((3, -1, 2), 0.5)):
            k = [2 * math.pi * m_i / p.length for m_i in m[:self.ndim]]
            k_x = sum(k_i * coords[axis] for k_i, axis in zip(k, self.axes))
            u = u + a * torch.exp(-p.nu * sum(k_i**2 for k_i in k) * coords["t"]) \
                * torch.sin(k_x + 0.3)
        return {"u": u}
