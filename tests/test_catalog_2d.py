"""Catalog families in 2D and 1-3D (heat, advection-diffusion, 2D Kuramoto-Sivashinsky,
Gray-Scott, Swift-Hohenberg, 2D Burgers): closed forms, the uniform reaction ODEs, and the
grid residual of their own solver output."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from sciops import pdes, spectral
from sciops.derivatives import time_derivative

FAMILIES = ["heat1d", "heat2d", "heat3d", "advdiff1d", "advdiff2d", "advdiff3d", "ks2d",
            "grayscott2d", "swifthohenberg2d", "burgers2d"]


def _verify(name, **changes):
    pde = pdes.get(name)
    return pde, pde.make_params({**pde.verify_case, "dtype": "float64", **changes})


def _mesh(pde, p):
    """Record times and the grid as broadcastable ``(time, n, ...)`` float64 tensors."""
    c = pde.coords(p)
    dims = 1 + pde.ndim
    out = {"t": torch.tensor(c["t"][1]).reshape(-1, *[1] * pde.ndim)}
    for i, a in enumerate(pde.axes):
        out[a] = torch.tensor(c[a][1]).reshape([-1 if j == i + 1 else 1 for j in range(dims)])
    return out


@pytest.mark.parametrize("name", ["heat1d", "heat2d", "heat3d", "advdiff1d", "advdiff2d",
                                  "advdiff3d", "burgers2d"])
def test_solution_from_exact_initial_condition_matches_closed_form(name):
    """Heat and advection-diffusion: Fourier modes decaying (and moving) exactly; 2D Burgers:
    the Cole-Hopf solution, nonlinear at every record."""
    pde, p = _verify(name)
    exact = pde.exact(p, _mesh(pde, p))
    out = pde.solve(p, {f"{k}0": v[:1] for k, v in exact.items()})
    for k, v in exact.items():
        err = float((out[k][0] - v).norm() / v.norm())
        assert err < 1e-6, (name, k, err)
        assert float((v[-1] - v[0]).norm() / v.norm()) > 0.01  # the solution does change


def _uniform_vs_ode(name, start, rhs, **changes):
    """Worst relative error over the records of a spatially uniform solve against
    ``solve_ivp`` of the reaction ODE ``y' = rhs(y)``."""
    pde, p = _verify(name, **changes)
    grid = (p.resolution,) * pde.ndim
    inputs = {f"{k}0": torch.full((1, *grid), y, dtype=torch.float64)
              for k, y in zip(pde.fields, start)}
    out = pde.solve(p, inputs)
    t = pde.coords(p)["t"][1]
    ode = solve_ivp(lambda _, y: rhs(p, y), (0.0, t[-1]), start, t_eval=t, method="DOP853",
                    rtol=1e-12, atol=1e-14).y
    got = np.stack([out[k][0].reshape(len(t), -1).numpy() for k in pde.fields])
    assert np.ptp(got, axis=-1).max() < 1e-12  # it stays uniform
    assert np.abs(ode[:, -1] - ode[:, 0]).max() > 0.05  # and the reaction matters
    return np.abs(got[..., 0] - ode).max() / np.abs(ode).max()


def test_gray_scott_uniform_state_follows_reaction_ode():
    def rhs(p, y):
        u, v = y
        return [-u * v**2 + p.F * (1 - u), u * v**2 - (p.F + p.k) * v]
    assert _uniform_vs_ode("grayscott2d", [0.5, 0.25], rhs, t_final=100.0, resolution=8) < 1e-6


def test_swift_hohenberg_uniform_state_follows_reaction_ode():
    """A uniform ``u`` feels ``(1 + Lap)² u = u``: ``u' = (r - 1) u + g u² - u³``."""
    def rhs(p, y):
        return [(p.r - 1) * y[0] + p.g * y[0] ** 2 - y[0] ** 3]
    assert _uniform_vs_ode("swifthohenberg2d", [1.0], rhs, resolution=8) < 1e-6


@pytest.mark.parametrize("name,base,rates,changes", [
    ("ks2d", [0.0], lambda p, k2: [k2 - k2**2], {}),
    # on the verify box (8 pi) the lowest mode decays slowly; on 4 pi it grows at 0.45
    ("swifthohenberg2d", [0.0], lambda p, k2: [p.r - (1 - k2) ** 2], {"length": 4 * math.pi}),
    ("grayscott2d", [1.0, 0.0], lambda p, k2: [-(p.Du * k2 + p.F), -(p.Dv * k2 + p.F + p.k)],
     {}),
])
def test_small_mode_on_steady_state_follows_linearised_rate(name, base, rates, changes):
    """``base + eps cos(k (x + y))``, eps = 1e-6, on a uniform steady state: the mode's
    amplitude is ``eps exp(lambda t)``, ``lambda`` the linearised symbol at ``|k|²``."""
    pde, p = _verify(name, **changes)
    mesh = _mesh(pde, p)
    k = 2 * math.pi / p.length
    wave = torch.cos(k * (mesh["x"] + mesh["y"]))
    eps = 1e-6
    out = pde.solve(p, {f"{f}0": b + eps * wave for f, b in zip(pde.fields, base)})
    t = mesh["t"].flatten()
    for f, b, lam in zip(pde.fields, base, rates(p, 2 * k * k)):
        amplitude = 2 * ((out[f][0] - b) * wave).mean((-2, -1)) / eps
        expected = torch.exp(lam * t)
        assert float((amplitude / expected - 1).abs().max()) < 1e-7, (name, f)
        assert float((expected[-1] - 1).abs()) > 0.1


def test_ks2d_conserves_the_mean():
    """Exponax's convention: ``<½|grad u|²>`` is removed from the nonlinearity, so the mean
    of ``u`` keeps its initial value to round-off, where the equation as written would move it
    by ``-½ int <|grad u|²> dt``."""
    pde, p = _verify("ks2d")
    u0 = 0.3 + pde.sample_inputs(p, 1, torch.Generator().manual_seed(0))["u0"]
    u = pde.solve(p, {"u0": u0})["u"][0]
    t = torch.tensor(pde.coords(p)["t"][1])
    assert float((u.mean((-2, -1)) - 0.3).abs().max()) < 1e-12
    half_g2 = 0.5 * sum(g**2 for g in spectral.gradient(u, pde.lengths(p))).mean((-2, -1))
    assert float(torch.trapezoid(half_g2, t)) > 0.01  # the drift that is removed


def _residual_ratio(pde, p, inputs, perturb):
    """RMS grid residual over RMS ``u_t`` of the solution of ``u_t = L u + perturb N(u) + f``
    (``perturb L`` for a linear PDE), recorded every step."""
    out = pde.solve(p, inputs, perturb=perturb)
    t = torch.tensor(pde.coords(p)["t"][1])
    res = pde.residual(out, {"t": t}, p)
    u_t = torch.stack([time_derivative(out[k], t, 1) for k in pde.fields], dim=2)
    return float(res.norm() / u_t.norm())


@pytest.mark.parametrize("name", FAMILIES)
def test_residual_of_own_solution_is_small_and_sensitive(name):
    pde, p = _verify(name)
    p = p.replace(n_records=max(p.n_records, round(p.t_final / p.dt)))
    inputs = pde.sample_inputs(p, 1, torch.Generator().manual_seed(0))
    own = _residual_ratio(pde, p, inputs, 1.0)
    wrong = _residual_ratio(pde, p, inputs, 1.1)
    assert own < 1e-3, own
    assert wrong > 100 * own, (own, wrong)
