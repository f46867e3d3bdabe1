"""2D Kuramoto–Sivashinsky, gradient form,
``u_t + ½(|grad u|² - <|grad u|²>) + Lap u + Lap² u = 0`` on ``[0, L)²``, ``<.>`` the box
average (Exponax's ``KuramotoSivashinsky``, APEBench's ``2d_phy_ks``; the 2D dynamics
in Kalogirou, Keaveny & Papageorgiou 2015, Proc. R. Soc. A 471: 20140932).

Nondimensional (length and time in the units that make every coefficient 1). Exponax's
convention: the box average of ``½|grad u|²`` is removed from the nonlinearity, so the mean of
``u`` is conserved (as written, it would drift at ``-½ <|grad u|²>``, about -2.6 per time unit
on APEBench's chaotic box of side 60); ``u`` differs only by a uniform shift, so its gradient is
the same either way. The box average is not a pointwise quantity: there is no pointwise
(autograd, PINN) residual, only the grid one (``sciops verify`` reports it "n/a").
"""

from __future__ import annotations

from sciops.pdes.base import register
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, smooth_random


@register
class KuramotoSivashinsky2D(SemilinearPDE):
    """2D Kuramoto-Sivashinsky u_t + (|grad u|² - <|grad u|²>)/2 + Lap u + Lap² u = 0."""

    name, ndim = "ks2d", 2
    fields = {"u": ("1", "front height")}
    verify_case = {"length": 24.0, "resolution": 64, "ic_modes": 2, "t_final": 1.0,
                   "n_records": 10, "dt": 0.05}
    Params = SemilinearParams.defaults(length=30.0, resolution=64, t_final=20.0, n_records=40,
                                       dt=0.05)

    def linear(self, u, d, p):
        lap_u = d.laplacian(u["u"])
        return {"u": -lap_u - d.laplacian(lap_u)}

    def nonlinear(self, u, d, p):
        half_g2 = 0.5 * sum(g**2 for g in d.grad(u["u"]))
        return {"u": -(half_g2 - d.mean(half_g2))}

    def initial(self, p, n, generator):
        return {"u": smooth_random(p, n, generator, 2)}
