"""Fisher–KPP diffusion–reaction ``u_t = nu u_xx + rho u (1 - u)`` on ``[0, L)`` (PDEBench's
1D diffusion–reaction)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sciops.pdes.base import param, register
from sciops.pdes.catalog.conventions import PDEBenchParams, pdebench_initial
from sciops.pdes.semilinear import SemilinearPDE


@register
class FisherKPP1D(SemilinearPDE):
    """1D Fisher-KPP u_t = nu u_xx + rho u (1 - u) (PDEBench diffusion-reaction)."""

    name, ndim = "fisherkpp1d", 1
    fields = {"u": ("1", "population density (scaled)")}
    verify_case = {"resolution": 64, "nu": 0.01, "rho": 5.0, "t_final": 0.2, "n_records": 5,
                   "dt": 0.01}

    @dataclass(frozen=True)
    class Params(PDEBenchParams):
        nu: float = param(0.5, "diffusivity (length²/time)", range=(0.0, None))
        rho: float = param(1.0, "growth rate (1/time)", range=(0.0, None))

    def linear(self, u, d, p):
        return {"u": p.nu * d.laplacian(u["u"])}

    def nonlinear(self, u, d, p):
        return {"u": p.rho * u["u"] * (1 - u["u"])}

    def initial(self, p, n, generator):
        return {"u": pdebench_initial(p, n, generator, normalize=True)}

    def exact(self, p, coords):
        """The uniform logistic growth ``u = u0 e^(rho t) / (1 - u0 + u0 e^(rho t))``,
        ``u0 = 0.1``."""
        t = torch.broadcast_tensors(coords["t"], coords["x"])[0]
        grow = 0.1 * torch.exp(p.rho * t)
        return {"u": grow / (0.9 + grow)}
