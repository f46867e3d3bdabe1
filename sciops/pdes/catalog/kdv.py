"""Korteweg–de Vries ``u_t + alpha u u_x + u_xxx = 0`` on ``[0, L)``, and LPSDA's random
initial condition (Brandstetter, Welling & Worrall 2022), shared with ``ks1d``.

``alpha = 6`` is the classical form; LPSDA's data use ``alpha = 1`` (``u -> 6 u / alpha``
maps one onto the other). The dispersive ``u_xxx`` makes the Fourier symbol imaginary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sciops.pdes.base import param, register
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE


@dataclass(frozen=True)
class LPSDAParams(SemilinearParams):
    """The initial condition of LPSDA's 1D data (Brandstetter, Welling & Worrall 2022)."""

    ic_modes: int = param(2, "highest sine wavenumber l of the initial condition (LPSDA: 2)",
                          range=(1, 4096))


def lpsda_initial(p: LPSDAParams, n: int, generator: torch.Generator) -> Tensor:
    """LPSDA's initial condition, ``(n, resolution)``: ``u = sum_{i=1}^{10} A_i
    sin(2 pi l_i x / L + phi_i)``, ``A_i ~ U[-0.5, 0.5)``, ``l_i`` uniform in ``1..ic_modes``
    (LPSDA: 1, 2), ``phi_i ~ U[0, 2 pi)``."""
    g = {"generator": generator, "dtype": torch.float64}
    x = torch.arange(p.resolution, dtype=torch.float64) * (p.length / p.resolution)
    amp, phase = torch.rand(n, 10, 1, **g) - 0.5, 2 * math.pi * torch.rand(n, 10, 1, **g)
    l = torch.randint(1, p.ic_modes + 1, (n, 10, 1), generator=generator)
    return (amp * torch.sin(l * x * (2 * math.pi / p.length) + phase)).sum(1).to(p.torch_dtype)


@register
class KdV1D(SemilinearPDE):
    """1D Korteweg-de Vries u_t + alpha u u_x + u_xxx = 0 (LPSDA)."""

    name, ndim = "kdv1d", 1
    fields = {"u": ("1", "wave amplitude (nondimensional)")}
    verify_case = {"length": 32.0, "resolution": 128, "t_final": 0.5, "n_records": 5,
                   "dt": 0.01}

    @dataclass(frozen=True)
    class Params(LPSDAParams.defaults(length=64.0, resolution=256, t_final=20.0, n_records=50,
                                      dt=0.01)):
        alpha: float = param(1.0, "coefficient of u u_x (1: LPSDA; 6: classical)")

    def linear(self, u, d, p):
        return {"u": -d.x(u["u"], 3)}

    def nonlinear(self, u, d, p):
        return {"u": -0.5 * p.alpha * d.x(u["u"] ** 2)}

    def initial(self, p, n, generator):
        return {"u": lpsda_initial(p, n, generator)}

    def exact(self, p, coords):
        """One soliton ``u = (3 c / alpha) sech²(sqrt(c) / 2 (x - c t - L/2))``, ``c = 1``:
        exact up to the overlap of its periodic images, ``~8 exp(-L/2)`` relative (< 1e-12
        for L >= 60)."""
        xi = 0.5 * (coords["x"] - coords["t"] - 0.5 * p.length)
        return {"u": 3.0 / p.alpha / torch.cosh(xi) ** 2}
