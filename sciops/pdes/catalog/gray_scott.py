"""Gray–Scott reaction–diffusion on ``[0, L)²`` (Pearson 1993, "Complex patterns in a simple
system", Science 261: 189; Exponax's ``GrayScott``, APEBench's ``2d_phy_gs``)::

    u_t = Du Lap u - u v² + F (1 - u)
    v_t = Dv Lap v + u v² - (F + k) v

Concentrations are scaled (``u = 1, v = 0`` is the trivial steady state). The default
``F = 0.04, k = 0.06`` (APEBench's default, its Pearson type "theta") grows labyrinthine
stripes. The random initial state ``v = (1 + s)/4, u = 1 - 2 v`` (``s`` from
:func:`smooth_random`, ``max |s| = 1``) is Pearson's perturbed state ``u = 1/2, v = 1/4`` where
``s = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sciops.pdes.base import param, register
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, smooth_random


@register
class GrayScott2D(SemilinearPDE):
    """2D Gray-Scott reaction-diffusion of a substrate u and an autocatalyst v."""

    name, ndim = "grayscott2d", 2
    fields = {"u": ("1", "substrate concentration"), "v": ("1", "autocatalyst concentration")}
    verify_case = {"length": 0.1, "resolution": 64, "ic_modes": 2, "t_final": 4.0,
                   "n_records": 10, "dt": 0.2}

    @dataclass(frozen=True)
    class Params(SemilinearParams.defaults(t_final=1000.0, n_records=50, dt=1.0)):
        Du: float = param(2e-5, "diffusivity of u (length²/time)", range=(0.0, None))
        Dv: float = param(1e-5, "diffusivity of v (length²/time)", range=(0.0, None))
        F: float = param(0.04, "feed rate (1/time)", range=(0.0, None))
        k: float = param(0.06, "kill rate (1/time)", range=(0.0, None))

    def linear(self, u, d, p):
        return {"u": p.Du * d.laplacian(u["u"]) - p.F * u["u"],
                "v": p.Dv * d.laplacian(u["v"]) - (p.F + p.k) * u["v"]}

    def nonlinear(self, u, d, p):
        uv2 = u["u"] * u["v"] ** 2
        return {"u": -uv2, "v": uv2}

    def forcing(self, x, p):
        return {"u": p.F}

    def initial(self, p, n, generator):
        v = 0.25 * (1 + smooth_random(p, n, generator, 2))
        return {"u": 1 - 2 * v, "v": v}
