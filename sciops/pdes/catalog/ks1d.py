"""Kuramoto–Sivashinsky ``u_t + u u_x + u_xx + nu u_xxxx = 0`` on ``[0, L)`` (LPSDA's and
PDEArena's 1D KS; ``nu = 1`` is the classical form, PDEArena also varies it in [0.5, 1.5])."""

from __future__ import annotations

from dataclasses import dataclass

from sciops.pdes.base import param, register
from sciops.pdes.catalog.conventions import LPSDAParams, lpsda_initial
from sciops.pdes.semilinear import SemilinearPDE


@register
class KuramotoSivashinsky1D(SemilinearPDE):
    """1D Kuramoto-Sivashinsky u_t + u u_x + u_xx + nu u_xxxx = 0 (LPSDA, PDEArena)."""

    name, ndim = "ks1d", 1
    fields = {"u": ("1", "velocity (nondimensional)")}
    verify_case = {"length": 32.0, "resolution": 128, "t_final": 1.0, "n_records": 5,
                   "dt": 0.02}

    @dataclass(frozen=True)
    class Params(LPSDAParams.defaults(length=64.0, resolution=256, t_final=40.0, n_records=50,
                                      dt=0.02)):
        nu: float = param(1.0, "coefficient of u_xxxx", range=(0.0, None), open_low=True)

    def linear(self, u, d, p):
        return {"u": -d.x(u["u"], 2) - p.nu * d.x(u["u"], 4)}

    def nonlinear(self, u, d, p):
        return {"u": -0.5 * d.x(u["u"] ** 2)}

    def initial(self, p, n, generator):
        return {"u": lpsda_initial(p, n, generator)}
