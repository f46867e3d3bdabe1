"""darcy2d: agreement with poisson2d, second-order convergence, AMG == direct, FNO
coefficient, residual, CLI run."""

import math

import numpy as np
import pytest
import torch

from sciops import cli, pdes
from sciops.data import load_recipe, open_dataset, sample_generator
from sciops.random_fields import cosine_grf

DA = pdes.get("darcy2d")
PO = pdes.get("poisson2d")


def _params(**kw):
    return DA.make_params({"dtype": "float64", **kw})


def _manufactured(n):
    """Smooth a and u with f = -div(a grad u) written out by hand, on the n x n grid."""
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    X, Y, pi = x[:, None], x[None, :], math.pi
    a = 1 + 0.5 * torch.sin(2 * pi * X) * torch.cos(pi * Y)
    a_x = pi * torch.cos(2 * pi * X) * torch.cos(pi * Y)
    a_y = -0.5 * pi * torch.sin(2 * pi * X) * torch.sin(pi * Y)
    u = torch.sin(pi * X) * torch.sin(2 * pi * Y) * torch.exp(X)
    u_x = (pi * torch.cos(pi * X) + torch.sin(pi * X)) * torch.sin(2 * pi * Y) * torch.exp(X)
    u_xx = ((1 - pi**2) * torch.sin(pi * X) + 2 * pi * torch.cos(pi * X)) \
        * torch.sin(2 * pi * Y) * torch.exp(X)
    u_y = 2 * pi * torch.sin(pi * X) * torch.cos(2 * pi * Y) * torch.exp(X)
    u_yy = -4 * pi**2 * u
    f = -(a_x * u_x + a * u_xx + a_y * u_y + a * u_yy)
    return a, u, f


def test_unit_coefficient_agrees_with_poisson_to_discretization_error():
    errs = []
    for n in (33, 65, 129):
        pp = PO.make_params({"resolution": n, "modes": 4, "dtype": "float64"})
        inp = PO.sample_inputs(pp, 2, sample_generator(0, 0))
        u_exact = PO.exact(pp, inp["f_hat"])
        a = torch.ones(2, n, n, dtype=torch.float64)
        u = DA.solve(_params(resolution=n), {"a": a, "f": inp["f"]})["u"]
        errs.append(float((u - u_exact).norm() / u_exact.norm()))
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    print("a=1 vs poisson2d errors", errs, "orders", orders)
    assert errs[-1] < 2e-4
    assert min(orders) >= 1.9


@pytest.mark.parametrize("solver", ["direct", "gmg"])
def test_smooth_coefficient_converges_at_second_order(solver):
    errs = []
    for n in (65, 129, 257):  # h = 1/64 .. 1/256
        a, u, f = _manufactured(n)
        p = _params(resolution=n, solver=solver, tol=1e-10)
        out = DA.solve(p, {"a": a[None], "f": f[None]})
        errs.append(float((out["u"][0] - u).norm() / u.norm()))
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    print(solver, "errors", errs, "orders", orders)
    assert min(orders) >= 1.9
    assert errs[-1] < 1e-4


def test_multigrid_matches_direct_on_fno_coefficients():
    # 211: gmg has one geometric level (209² -> 104² unknowns), then LU; default tol 1e-6
    p = _params(resolution=211)
    a = DA.sample_inputs(p, 2, sample_generator(0, 0))["a"]
    u_direct = DA.solve(p.replace(solver="direct"), {"a": a})["u"]
    for solver in ("gmg", "amg"):
        u_mg = DA.solve(p.replace(solver=solver), {"a": a})["u"]
        rel = (u_mg - u_direct).flatten(1).norm(dim=1) / u_direct.flatten(1).norm(dim=1)
        print(solver, "vs direct", rel.tolist())
        assert float(rel.max()) < 1e-8


def test_thresholded_coefficient_takes_exactly_two_values():
    p = _params(resolution=85, a_high=12.0, a_low=3.0)
    a = DA.sample_inputs(p, 4, sample_generator(0, 0))["a"]
    assert sorted(torch.unique(a).tolist()) == [3.0, 12.0]
    # the GRF is centred: on average half the domain is high
    assert 0.3 < float((a == 12.0).double().mean()) < 0.7
    custom = DA.sample_inputs(p.replace(a_high=5.0, a_low=0.5), 1, sample_generator(0, 0))["a"]
    assert sorted(torch.unique(custom).tolist()) == [0.5, 5.0]
    first = DA.sample_inputs(p, 1, sample_generator(0, 0))["a"]
    assert torch.equal(custom == 5.0, first == 12.0)  # same seed, same GRF


def test_cosine_grf_has_the_neumann_covariance():
    # Var g(x, y) = sum_kl lambda_kl phi_k(x)^2 phi_l(y)^2, checked at a corner and the centre
    n, alpha, tau = 17, 2.0, 3.0
    g = cosine_grf(4000, n, alpha, tau, generator=torch.Generator().manual_seed(0))
    k = torch.arange(n, dtype=torch.float64)
    k2 = k[:, None] ** 2 + k[None] ** 2
    lam = tau ** (2 * alpha - 2) * (math.pi**2 * k2 + tau**2) ** -alpha
    lam[0, 0] = 0.0
    for i, x in ((0, 0.0), (8, 0.5)):
        phi2 = torch.where(k == 0, 1.0, 2.0) * torch.cos(math.pi * k * x) ** 2
        expected = float((lam * phi2[:, None] * phi2[None]).sum())
        measured = float(g[:, i, i].var())
        assert abs(measured / expected - 1) < 0.1, (x, measured, expected)  # ~2% std error


def test_residual_vanishes_on_discrete_and_converges_on_exact_solution():
    p = _params(resolution=129, tol=1e-10)
    coords = {"x": torch.linspace(0, 1, 129, dtype=torch.float64)}
    a = DA.sample_inputs(p, 2, sample_generator(0, 1))["a"]
    out = DA.solve(p, {"a": a})
    r = DA.residual({"a": a, "u": out["u"]}, coords, p)
    assert float(r.abs().max()) < 1e-7  # f = 1
    res_exact = []
    for n in (65, 129):
        a, u, f = _manufactured(n)
        r = DA.residual({"a": a[None], "u": u[None], "f": f[None]},
                        {"x": torch.linspace(0, 1, n, dtype=torch.float64)}, p)
        res_exact.append(float(r.abs().max() / f.abs().max()))
    assert res_exact[1] < 1e-3
    assert math.log2(res_exact[0] / res_exact[1]) >= 1.9


def test_storage_subsamples_the_solver_grid():
    p = _params(resolution=41, output_resolution=11, solver="direct")
    a = DA.sample_inputs(p, 1, sample_generator(0, 0))["a"]
    full = DA.solve(p.replace(output_resolution=None), {"a": a})
    sub = DA.solve(p, {"a": a})
    assert torch.equal(sub["u"], full["u"][:, ::4, ::4])
    assert torch.equal(sub["a"], a[:, ::4, ::4])


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(ValueError, match=r"^a_high=3.0 and a_low=3.0 must differ"):
        _params(a_high=3.0, a_low=3.0)
    with pytest.raises(ValueError, match=r"^a_low=0.0 is out of range"):
        _params(a_low=0.0)
    with pytest.raises(ValueError, match=r"^resolution=4 is out of range"):
        _params(resolution=4)
    with pytest.raises(ValueError, match=r"^output_resolution=100: \(resolution - 1\) = 420"):
        _params(output_resolution=100)
    p = _params(resolution=9)
    with pytest.raises(ValueError, match="a: the coefficient must be finite and > 0"):
        DA.solve(p, {"a": -torch.ones(1, 9, 9, dtype=torch.float64)})


def test_cli_generate_matches_fresh_solve(tmp_path):
    out = tmp_path / "ds"
    sets = ["--set", "resolution=61", "--set", "output_resolution=31"]
    argv = ["generate", "darcy2d-fno-r85", "--out", str(out), "--samples", "4", *sets, "--quiet"]
    assert cli.main(argv) == 0
    recipe = load_recipe("darcy2d-fno-r85").with_changes(
        samples=4, overrides={"resolution": "61", "output_resolution": "31"})
    p = recipe.params.replace(dtype="float64", solver="direct")
    a = torch.cat([DA.sample_inputs(p, 1, sample_generator(recipe.seed, k))["a"] for k in range(4)])
    ref = DA.solve(p, {"a": a})
    ds = open_dataset(out)
    u = torch.from_numpy(ds["u"].values).double()
    assert u.shape == (4, 31, 31)
    assert float((u - ref["u"]).abs().max() / ref["u"].abs().max()) < 1e-6  # float32 storage
    assert np.array_equal(np.unique(ds["a"].values), [3.0, 12.0])
    assert np.allclose(ds["x"].values, np.linspace(0, 1, 31))


def test_bilinear_prolongation_weights():
    from sciops.pdes.darcy2d import bilinear_prolongation
    P = bilinear_prolongation(9)  # 7² fine interior nodes from 3² coarse ones
    assert P.format == "csr" and P.shape == (49, 9)
    col = P[:, 4].toarray().reshape(7, 7)  # coarse centre = fine interior node (3, 3)
    assert col[3, 3] == 1.0 and col[2, 3] == col[3, 4] == 0.5 and col[2, 2] == 0.25
    assert col.sum() == 4.0  # 1 + 4 x 0.5 + 4 x 0.25
    # interpolating a coarse field that is bilinear in the interior and zero at the walls
    # reproduces the tent it samples
    ones = P @ np.ones(9)
    assert ones.reshape(7, 7)[1:-1, 1:-1].min() == 1.0 and ones.reshape(7, 7)[0, 0] == 0.25


def test_domain_is_the_unit_square_with_zero_walls():
    dom = DA.domain(_params())
    assert dom.box == {"x": (0.0, 1.0), "y": (0.0, 1.0)} and dom.outputs == ("u",)
    assert dom.periodic == ()
    assert [(c.name, c.coord, c.value, c.sets) for c in dom.conditions] == [
        ("x=0", "x", 0.0, ("u", None)), ("x=1", "x", 1.0, ("u", None)),
        ("y=0", "y", 0.0, ("u", None)), ("y=1", "y", 1.0, ("u", None))]
