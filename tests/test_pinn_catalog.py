"""``sciops solve P --method pinn`` for every registered PDE that has a pointwise definition,
each with an error bound against the exact solution or the PDE's own reference solver.

The PDEs are those :func:`sciops.train.physics.solve_methods` lists with ``pinn`` among
``sciops.pdes.available()``, so a new one is covered automatically (and fails until it gets
a row in :data:`CASES`). Each row is a small, coarse instance (float64, short horizon via
``t_final``, few records) with a small network and budget, and a bound: about 2-3x the
relative L2 error measured on this 2-core machine (``benchmarks/pinn_catalog.py`` runs the
sweep and records errors and times in ``benchmarks/results/pinn_catalog.json``). The slow
sweep takes ~25 min; :func:`test_representative_pinn_solve` is the fast one.
"""

from __future__ import annotations

import json

import pytest

from sciops import pdes
from sciops.train.physics import solve_instance, solve_methods

SMALL = {"n_interior": 1000, "n_boundary": 128, "adam_steps": 500, "lbfgs_steps": 300,
         "steps_per_epoch": 500, "lr": 3e-3, "model.width": 32, "model.depth": 3,
         "eval_points": 512, "bc": "exact"}
"""The budget most rows use (``--option`` values): 1000 interior points, 500 Adam steps,
300 L-BFGS iterations, a 3x32 tanh network, Dirichlet data (the initial condition) imposed
exactly by the distance ansatz (a penalty left errors of 2-20 % at this budget)."""


def case(sets: dict, bound: float, **options) -> dict:
    """A row: ``--set`` values (float64 added), ``--option`` values over :data:`SMALL`,
    and the bound on the largest relative L2 error over the unknowns with a reference."""
    return {"sets": {"dtype": "float64", **sets}, "options": {**SMALL, **options},
            "bound": bound}


def steady(sets: dict, bound: float) -> dict:
    """A row of a steady family (:mod:`sciops.pdes.steady`, float64 throughout; Dirichlet data
    on several faces, so penalties: the exact ansatz takes data on one face)."""
    return {"sets": {**STEADY, **sets}, "options": {**SMALL, "bc": "soft"}, "bound": bound}


SEMI_1D = {"resolution": 64, "n_records": 8, "ic_modes": 2}
SEMI_2D = {"resolution": 16, "n_records": 4, "ic_modes": 1}
SEMI_3D = {"resolution": 8, "n_records": 2, "ic_modes": 1}
STEADY = {"resolution": 33, "n_terms": 2, "k_max": 6.0}

CASES: dict[str, dict] = {
    "advdiff1d": case({**SEMI_1D, "t_final": 0.2}, 5e-4),
    "advdiff2d": case({**SEMI_2D, "t_final": 0.2}, 1e-3),
    "advdiff3d": case({**SEMI_3D, "t_final": 0.1}, 6e-3),
    "advection1d": case({**SEMI_1D, "t_final": 0.2}, 3e-3),
    "allencahn1d": case({**SEMI_1D, "t_final": 0.2}, 2e-3),
    "allencahn2d": case({**SEMI_2D, "t_final": 0.2}, 7e-3),
    "antiderivative1d": case({"resolution": 51}, 4e-5),
    "burgers1d": case({**SEMI_1D, "t_final": 0.2, "nu": 0.05, "ic_modes": 1}, 3e-3),
    "burgers2d": case({**SEMI_2D, "t_final": 0.2, "nu": 0.1}, 6e-3),
    "fisherkpp1d": case({**SEMI_1D, "t_final": 0.2, "nu": 0.01, "rho": 5.0}, 8e-4),
    "grayscott2d": case({**SEMI_2D, "length": 0.1, "t_final": 2.0}, 5e-3),
    "heat1d": case({**SEMI_1D, "t_final": 0.2}, 3e-4),
    "heat2d": case({**SEMI_2D, "t_final": 0.2}, 1e-3),
    "heat3d": case({**SEMI_3D, "t_final": 0.1}, 4e-3),
    "kdv1d": case({**SEMI_1D, "length": 32.0, "t_final": 0.5}, 2e-3),
    "ks1d": case({**SEMI_1D, "length": 32.0, "t_final": 0.5}, 1.5e-3),
    "ns2d": case({"resolution": 16, "output_resolution": 16, "t_final": 0.2, "n_records": 4,
                  "ic_alpha": 4.0, "ic_sigma": 5000.0}, 0.05),
    "poisson1d": steady({}, 2.5e-5),
    "poisson2d": case({"resolution": 17, "modes": 2}, 2e-4),
    "allencahn-steady1d": steady({}, 1.2e-5),
    "allencahn-steady2d": steady({"resolution": 17}, 0.04),
    "helmholtz1d": steady({"k": 3.0}, 8e-3),
    "helmholtz2d": steady({"resolution": 17, "k": 3.0}, 0.025),
    "advection-spacetime1d": steady({"resolution": 17, "beta": 1.0}, 0.012),
    "swifthohenberg2d": case({**SEMI_2D, "length": 25.132741228718345, "t_final": 0.5}, 0.015),
    "wave2d": case({"modes": 1, "c": 0.5, "t_final": 1.0, "resolution": 9, "n_records": 4},
                   1e-3, bc="exact"),
}


def pinn_pdes() -> list[str]:
    """Every registered PDE that ``sciops solve`` can solve by ``pinn``."""
    return [n for n in pdes.available() if "pinn" in solve_methods(pdes.get(n))]


def solve_case(name: str, out, **changes) -> dict:
    """Solve :data:`CASES` ``[name]`` (``changes`` override its options) into ``out``; the
    summary of :func:`~sciops.train.physics.solve_instance`."""
    row = CASES[name]
    options = {k: str(v) for k, v in {**row["options"], **changes}.items()}
    return solve_instance(name, {k: str(v) for k, v in row["sets"].items()}, "pinn", out,
                          options=options)


def check_summary(name: str, summary: dict, bound: float) -> float:
    """The largest error of a solve, after checking it is an error against a reference
    (the exact solution or the PDE's own solver), never a residual."""
    assert summary["reference"] in ("exact solution", f"{name} reference solver"), summary
    errors = summary["rel_l2"]
    assert errors and all(e == e for e in errors.values()), errors  # some unknown, no NaN
    worst = max(errors.values())
    assert worst < bound, (name, errors, bound)
    return worst


def test_every_pinn_pde_has_a_case():
    """The sweep covers what ``solve_methods`` lists, no more and no less."""
    assert sorted(CASES) == pinn_pdes()


@pytest.mark.slow
@pytest.mark.parametrize("name", pinn_pdes())
def test_pinn_error_bound(name, tmp_path):
    assert name in CASES, f"{name}: add a row to CASES (budget and measured bound)"
    check_summary(name, solve_case(name, tmp_path), CASES[name]["bound"])


def test_representative_pinn_solve(tmp_path):
    """One fast row: heat1d on a smaller budget (400 points, 200 Adam + 100 L-BFGS steps,
    3x16 network; 6 CPU-s), against its reference solver: measured 4.0e-4 (0.31 with the
    sign of the diffusion term flipped in the autograd residual)."""
    summary = solve_case("heat1d", tmp_path, adam_steps=200, lbfgs_steps=100,
                         n_interior=400, **{"model.width": 16})
    check_summary("heat1d", summary, 1e-3)
    assert json.loads((tmp_path / "summary.json").read_text())["rel_l2"] == summary["rel_l2"]
