"""Initial conditions of peers' 1D datasets shared by several catalog families.

PDEBench's (Takamoto et al. 2022: Burgers, advection, diffusion–reaction) and LPSDA's
(Brandstetter, Welling & Worrall 2022: KdV, Kuramoto–Sivashinsky) parameters and random
initial data. The draws themselves are :func:`sciops.random_fields.pdebench_sines` and
:func:`sciops.random_fields.lpsda_sines`; this module registers no PDE, so the families
import it rather than each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sciops import random_fields
from sciops.pdes.base import param
from sciops.pdes.semilinear import SemilinearParams


@dataclass(frozen=True)
class PDEBenchParams(SemilinearParams.defaults(resolution=1024)):
    """Grid and initial condition of PDEBench's 1D data (Takamoto et al. 2022)."""

    ic_modes: int = param(4, "highest sine wavenumber j of the initial condition "
                          "(PDEBench: 4)", range=(1, 4096))
    ic_kinks: float = param(0.0, "probability of each of PDEBench's non-smooth edits of the "
                            "initial condition, |u| and a tanh window (PDEBench: 0.1; 0 "
                            "keeps every initial condition a smooth sine sum)", range=(0.0, 1.0))


def pdebench_initial(p: PDEBenchParams, n: int, generator: torch.Generator, *,
                     normalize: bool = False) -> Tensor:
    """PDEBench's random 1D initial condition, ``(n, resolution)`` in ``p.dtype``
    (:func:`sciops.random_fields.pdebench_sines` with ``ic_modes``, ``ic_kinks``)."""
    u = random_fields.pdebench_sines(n, p.resolution, p.length, p.ic_modes, p.ic_kinks,
                                     generator, normalize=normalize)
    return u.to(p.torch_dtype)


@dataclass(frozen=True)
class LPSDAParams(SemilinearParams):
    """The initial condition of LPSDA's 1D data (Brandstetter, Welling & Worrall 2022)."""

    ic_modes: int = param(2, "highest sine wavenumber l of the initial condition (LPSDA: 2)",
                          range=(1, 4096))


def lpsda_initial(p: LPSDAParams, n: int, generator: torch.Generator) -> Tensor:
    """LPSDA's random 1D initial condition, ``(n, resolution)`` in ``p.dtype``
    (:func:`sciops.random_fields.lpsda_sines` with ``ic_modes``)."""
    return random_fields.lpsda_sines(n, p.resolution, p.length, p.ic_modes,
                                     generator).to(p.torch_dtype)
