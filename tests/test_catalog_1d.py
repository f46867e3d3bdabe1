"""The 1D catalog families (and Allen–Cahn in 2D) against closed-form solutions, and their
grid residuals: small on their own solver output, 100x larger when the solver is given a
wrong equation. All runs in float64, ETDRK4."""

import math

import pytest
import torch
from scipy.special import ellipj, ellipk

from sciops import pdes, spectral


def run_exact(name, **values):
    """Solve from ``exact`` at t=0 on the solver grid; returns the relative L2 error against
    ``exact`` over all records (the t=0 record included)."""
    pde = pdes.get(name)
    p = pde.make_params({**values, "dtype": "float64"})
    t = torch.as_tensor(pde.coords(p)["t"][1])
    x = spectral.grid((p.resolution,) * pde.ndim, pde.lengths(p))
    axes = {a: x[i].reshape([-1 if j == i else 1 for j in range(pde.ndim)])
            for i, a in enumerate(pde.axes)}
    u0 = pde.exact(p, {"t": torch.zeros(()), **axes})["u"]
    u = pde.solve(p, {"u0": u0[None]})["u"][0]
    ref = pde.exact(p, {"t": t.reshape(-1, *[1] * pde.ndim), **axes})["u"]
    return float((u - ref).norm() / ref.norm())


def test_burgers_cole_hopf():
    assert run_exact("burgers1d", nu=0.05, resolution=128, t_final=0.5, n_records=5,
                     dt=1e-3) < 1e-6


@pytest.mark.parametrize("alpha", [1.0, 6.0])
def test_kdv_soliton(alpha):
    """Amplitude 3/alpha, speed 1: 2 length units in a box of 64 (tails below 1e-13)."""
    assert run_exact("kdv1d", alpha=alpha, length=64.0, resolution=256, t_final=2.0,
                     n_records=4, dt=0.01) < 1e-6


def test_advection_of_a_pulse():
    assert run_exact("advection1d", beta=0.7, resolution=64, t_final=1.0, n_records=4) < 1e-12


def test_advection_of_pdebench_data_by_whole_cells():
    """PDEBench's kinked initial conditions shifted by beta t = 4 cells: the grid rolls (an
    even number of cells, as the Nyquist mode is not advected)."""
    pde = pdes.get("advection1d")
    p = pde.make_params({"beta": 2.0, "resolution": 256, "ic_kinks": 1.0, "t_final": 2 / 256,
                         "n_records": 1, "dtype": "float64"})
    u0 = pde.sample_inputs(p, 4, torch.Generator().manual_seed(0))["u0"]
    u = pde.solve(p, {"u0": u0})["u"][:, -1]
    assert torch.allclose(u, u0.roll(4, dims=-1), atol=1e-12, rtol=0.0)


def test_fisher_kpp_logistic_growth():
    assert run_exact("fisherkpp1d", rho=2.0, resolution=16, t_final=2.0, n_records=4,
                     dt=0.01) < 1e-8


@pytest.mark.parametrize("name", ["allencahn1d", "allencahn2d"])
def test_allen_cahn_uniform_solution(name):
    """The spatially uniform solution of u' = u - u³ from u0 = 0.1 (near u = 1 by t = 5)."""
    assert run_exact(name, resolution=32, t_final=5.0, n_records=5, dt=0.01) < 1e-8


def test_allen_cahn_periodic_stationary_solution():
    """``u = sqrt(2m/(1+m)) sn(x / (eps sqrt(1+m)) | m)`` solves eps² u'' + u - u³ = 0 with
    period ``4 K(m) eps sqrt(1+m)``: it must stay put on a box of one period."""
    pde, m, eps = pdes.get("allencahn1d"), 0.9, 0.05
    length = 4 * ellipk(m) * eps * math.sqrt(1 + m)
    p = pde.make_params({"eps": eps, "length": length, "resolution": 128, "t_final": 1.0,
                         "n_records": 4, "dt": 0.01, "dtype": "float64"})
    x = spectral.grid((p.resolution,), (length,))[0]
    sn = ellipj((x / (eps * math.sqrt(1 + m))).numpy(), m)[0]
    u0 = math.sqrt(2 * m / (1 + m)) * torch.as_tensor(sn)
    u = pde.solve(p, {"u0": u0[None]})["u"][0]
    assert float((u - u0).abs().max()) < 1e-9


@pytest.mark.parametrize("name, values, rate", [
    ("ks1d", {"length": 32.0, "nu": 0.8}, lambda k, p: k**2 - p.nu * k**4),
    ("fisherkpp1d", {"nu": 0.01, "rho": 2.0}, lambda k, p: p.rho - p.nu * k**2)])
def test_small_amplitude_growth_rates(name, values, rate):
    """Modes of amplitude 1e-10 grow or decay at the linearized rate (nonlinear terms are
    1e-10 relative): the signs and coefficients of the linear part."""
    pde = pdes.get(name)
    p = pde.make_params({**values, "resolution": 64, "t_final": 2.0, "n_records": 1,
                         "dt": 0.01, "dtype": "float64"})
    x = spectral.grid((p.resolution,), (p.length,))[0]
    ks = [2 * math.pi * m / p.length for m in (3, 8)]
    u = pde.solve(p, {"u0": 1e-10 * sum(torch.sin(k * x) for k in ks)[None]})["u"][0, -1]
    ref = 1e-10 * sum(math.exp(rate(k, p) * p.t_final) * torch.sin(k * x) for k in ks)
    assert float((u - ref).norm() / ref.norm()) < 1e-6


def test_ks_galilean_invariance():
    """``u(x - c t, t) + c`` solves KS when ``u`` does: with c t = 8 cells the grid rolls. The
    nonlinear term's sign and coefficient."""
    pde, c = pdes.get("ks1d"), 1.0
    p = pde.make_params({"length": 32.0, "resolution": 128, "t_final": 2.0, "n_records": 1,
                         "dt": 0.01, "dtype": "float64"})
    u0 = pde.sample_inputs(p, 2, torch.Generator().manual_seed(0))["u0"]
    u = pde.solve(p, {"u0": u0})["u"][:, -1]
    v = pde.solve(p, {"u0": u0 + c})["u"][:, -1]
    assert float((v - c - u.roll(8, dims=-1)).abs().max() / u.abs().max()) < 1e-8


@pytest.mark.parametrize("name", ["burgers1d", "advection1d", "fisherkpp1d", "kdv1d", "ks1d",
                                  "allencahn1d", "allencahn2d"])
def test_grid_residual_sees_the_equation(name):
    """On ``verify_case``, recorded every step: the residual relative to |u_t| is below 1e-4
    and grows at least 100x when N (L for advection) is scaled by 1.1 in the solver."""
    pde = pdes.get(name)
    p = pde.make_params({**pde.verify_case, "dtype": "float64"})
    p = p.replace(n_records=round(p.t_final / p.dt))
    inputs = pde.sample_inputs(p, 2, torch.Generator().manual_seed(0))
    t = torch.as_tensor(pde.coords(p)["t"][1])

    def relative_residual(perturb):
        u = pde.solve(p, inputs, perturb=perturb)
        u_t = torch.gradient(u["u"], spacing=(t,), dim=1)[0]
        return float(pde.residual(u, {"t": t}, p).norm() / u_t.norm())

    r = relative_residual(1.0)
    assert r < 1e-4
    assert relative_residual(1.1) > 100 * r
