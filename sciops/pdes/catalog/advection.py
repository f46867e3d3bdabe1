"""Linear advection ``u_t + beta u_x = 0`` on ``[0, L)`` (PDEBench's 1D advection). Linear:
the exponential integrators (ETDRK1-4, IFRK4) are exact for any ``dt``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sciops.pdes.base import param, register
from sciops.pdes.catalog.conventions import PDEBenchParams, pdebench_initial
from sciops.pdes.semilinear import SemilinearPDE


@register
class Advection1D(SemilinearPDE):
    """1D linear advection u_t + beta u_x = 0 (PDEBench)."""

    name, ndim = "advection1d", 1
    fields = {"u": ("1", "advected scalar")}
    verify_case = {"resolution": 64, "t_final": 0.1, "n_records": 5, "dt": 0.002}

    @dataclass(frozen=True)
    class Params(PDEBenchParams.defaults(dt=0.01)):
        beta: float = param(1.0, "advection speed (length/time; PDEBench: 0.1, 0.2, 0.4, 1, "
                            "2, 4)")

    def linear(self, u, d, p):
        return {"u": -p.beta * d.x(u["u"])}

    def initial(self, p, n, generator):
        return {"u": pdebench_initial(p, n, generator)}

    def exact(self, p, coords):
        """The pulse ``u = exp(sin(2 pi (x - beta t) / L))`` carried at speed ``beta``."""
        return {"u": torch.exp(torch.sin(2 * math.pi * (coords["x"] - p.beta * coords["t"])
                                         / p.length))}
