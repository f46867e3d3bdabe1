"""2D Swift–Hohenberg ``u_t = r u - (1 + Lap)² u + g u² - u³`` on ``[0, L)²`` (Exponax's
``SwiftHohenberg``, APEBench's ``2d_phy_sh``): stripes and hexagons of wavelength 2 pi grow
for ``r > 0``; the quadratic term ``g`` favours hexagons. Nondimensional."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sciops.pdes.base import param, register
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, smooth_random


@register
class SwiftHohenberg2D(SemilinearPDE):
    """2D Swift-Hohenberg u_t = r u - (1 + Lap)² u + g u² - u³."""

    name, ndim = "swifthohenberg2d", 2
    fields = {"u": ("1", "order parameter")}
    verify_case = {"length": 8 * math.pi, "resolution": 64, "ic_modes": 1, "t_final": 1.0,
                   "n_records": 10, "dt": 0.05}

    @dataclass(frozen=True)
    class Params(SemilinearParams.defaults(length=10 * math.pi, resolution=64, t_final=20.0,
                                           n_records=40, dt=0.05)):
        r: float = param(0.7, "reactivity, the growth rate of the critical mode (1/time)")
        g: float = param(1.0, "quadratic coefficient (1/time)")

    def linear(self, u, d, p):
        w = u["u"] + d.laplacian(u["u"])
        return {"u": p.r * u["u"] - (w + d.laplacian(w))}

    def nonlinear(self, u, d, p):
        return {"u": p.g * u["u"] ** 2 - u["u"] ** 3}

    def initial(self, p, n, generator):
        return {"u": smooth_random(p, n, generator, 2)}
