"""Allen–Cahn ``u_t = eps² Lap u + u - u³`` on the periodic box ``[0, L)^d``, d = 1, 2.

Time in units of the reaction time; ``eps`` (length) sets the width ``sqrt(2) eps`` of the
``tanh`` interfaces between the phases ``u = ±1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sciops.pdes.base import param
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, register_dims, smooth_random

_VERIFY = {"t_final": 0.5, "n_records": 5, "dt": 0.02}


@register_dims("allencahn", dims=(1, 2), verify_cases={
    1: {"resolution": 128, "eps": 0.05, "ic_modes": 3, **_VERIFY},
    2: {"resolution": 64, "eps": 0.07, "ic_modes": 2, **_VERIFY}})
class AllenCahn(SemilinearPDE):
    """Allen-Cahn u_t = eps² Lap u + u - u³, periodic, 1-2D."""

    fields = {"u": ("1", "phase field")}

    @dataclass(frozen=True)
    class Params(SemilinearParams.defaults(resolution=256, ic_modes=8, t_final=10.0,
                                           n_records=50, dt=0.05)):
        eps: float = param(0.02, "interface width parameter (length)", range=(0.0, None))

    def linear(self, u, d, p):
        return {"u": p.eps**2 * d.laplacian(u["u"])}

    def nonlinear(self, u, d, p):
        return {"u": u["u"] - u["u"] ** 3}

    def initial(self, p, n, generator):
        return {"u": smooth_random(p, n, generator, self.ndim)}

    def exact(self, p, coords):
        """The uniform solution ``u = u0 e^t / sqrt(1 + u0² (e^(2t) - 1))`` of
        ``u' = u - u³``, ``u0 = 0.1``."""
        t = torch.broadcast_tensors(coords["t"], *(coords[a] for a in self.axes))[0]
        return {"u": 0.1 * torch.exp(t) / torch.sqrt(1 + 0.01 * torch.expm1(2 * t))}
