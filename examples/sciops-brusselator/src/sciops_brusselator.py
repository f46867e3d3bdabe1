"""The Brusselator reaction–diffusion system as a sciops plug-in (Prigogine & Lefever 1968)::

    u_t = Du u_xx + a - (b + 1) u + u² v
    v_t = Dv v_xx + b u - u² v

on a periodic ``[0, L)``. The uniform state ``(a, b/a)`` loses stability to oscillations for
``b > 1 + a²`` (Hopf); the defaults (``a=1, b=3``) are past it, so perturbations grow into
relaxation oscillations whose phase varies in space. The coupling ``b u`` is in the
nonlinear part: sciops needs the linear part diagonal in the fields. Registered through the
entry point ``sciops.pdes`` named ``brusselator`` (see ``pyproject.toml``), not with
``@register``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sciops.pdes.base import param
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, smooth_random


class Brusselator(SemilinearPDE):
    """1D Brusselator reaction-diffusion of two chemical species u and v."""

    name, ndim = "brusselator", 1
    fields = {"u": ("1", "activator concentration"), "v": ("1", "inhibitor concentration")}
    verify_case = {"resolution": 128, "ic_modes": 2, "t_final": 0.5, "dt": 0.01}

    @dataclass(frozen=True)
    class Params(SemilinearParams):
        a: float = param(1.0, "feed of u (1/time)", range=(0.0, None), open_low=True)
        b: float = param(3.0, "conversion rate of u into v (1/time)", range=(0.0, None))
        Du: float = param(1e-3, "diffusivity of u (length²/time)", range=(0.0, None))
        Dv: float = param(5e-3, "diffusivity of v (length²/time)", range=(0.0, None))
        t_final: float = param(20.0, "time span recorded after the burn-in",
                               range=(0.0, None), open_low=True)
        dt: float = param(0.01, "time step", range=(0.0, None), open_low=True)

    def linear(self, u, d, p):
        return {"u": p.Du * d.laplacian(u["u"]) - (p.b + 1) * u["u"],
                "v": p.Dv * d.laplacian(u["v"])}

    def nonlinear(self, u, d, p):
        u2v = u["u"] ** 2 * u["v"]
        return {"u": u2v, "v": p.b * u["u"] - u2v}

    def forcing(self, x, p):
        return {"u": p.a}

    def initial(self, p, n, generator):
        du, dv = smooth_random(p, 2 * n, generator, amplitude=0.5).chunk(2)
        return {"u": p.a + du, "v": p.b / p.a + dv}
