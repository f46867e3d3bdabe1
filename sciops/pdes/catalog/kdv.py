"""Korteweg–de Vries ``u_t + alpha u u_x + u_xxx = 0`` on ``[0, L)``, from LPSDA's random
initial condition (Brandstetter, Welling & Worrall 2022;
:mod:`sciops.pdes.catalog.conventions`).

``alpha = 6`` is the classical form; LPSDA's data use ``alpha = 1`` (``u -> 6 u / alpha``
maps one onto the other). The dispersive ``u_xxx`` makes the Fourier symbol imaginary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sciops.pdes.base import param, register
from sciops.pdes.catalog.conventions import LPSDAParams, lpsda_initial
from sciops.pdes.semilinear import SemilinearPDE


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
