"""wave2d: exact modal data, Verlet order in time, energy conservation, residual, CLI run."""

import math

import numpy as np
import pytest
import torch

from sciops import cli, pdes
from sciops.data import load_recipe, open_dataset, sample_generator
from sciops.pdes import wave2d as W

WA = pdes.get("wave2d")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Thousands of tiny FFTs: on a shared, oversubscribed CPU torch's intra-op thread pool
    # makes each one wait for a descheduled worker (20x slower); one thread is as fast idle.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _params(**kw):
    return WA.make_params({"dtype": "float64", **kw})


def _series_by_loops(p, coeffs, x, t):
    """The initial-condition series times cos(omega t), summed mode by mode in numpy."""
    K, c = p.modes, p.c
    out = np.zeros((coeffs.shape[0], len(t), len(x), len(x)))
    co = coeffs.numpy()
    if p.boundary == "dirichlet":
        for k in range(1, K + 1):
            for l in range(1, K + 1):
                w = c * math.pi * math.hypot(k, l)
                shape = np.outer(np.sin(math.pi * k * x), np.sin(math.pi * l * x))
                out += co[:, k - 1, l - 1, None, None, None] * np.cos(w * t)[:, None, None] * shape
    else:
        for a, k in enumerate(range(-K, K + 1)):
            for b, l in enumerate(range(-K, K + 1)):
                w = 2 * math.pi * c * math.hypot(k, l)
                wave = np.exp(2j * math.pi * (k * x[:, None] + l * x[None, :]))
                out += (co[:, a, b, None, None, None] * np.cos(w * t)[:, None, None] * wave).real
    return out


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
def test_modal_solution_matches_independent_series(boundary):
    p = _params(boundary=boundary)  # CNO setting: K=24, r=1, c=0.1, 64^2, T=5
    inp = WA.sample_inputs(p, 2, sample_generator(0, 5))
    u = WA.solve(p, inp)["u"].numpy()
    x, t = WA.coords(p)["x"][1], WA.coords(p)["t"][1]
    ref = _series_by_loops(p, inp["coeffs"], x, t)
    assert np.abs(u - ref).max() / np.abs(ref).max() < 1e-10


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
def test_verlet_is_second_order_in_time(boundary):
    errs = []
    for dt in (0.01, 0.005, 0.0025):
        p = _params(boundary=boundary, resolution=16, modes=6, c=1.0, t_final=1.0,
                    n_records=1, solver="verlet", dt=dt)
        inp = WA.sample_inputs(p, 2, sample_generator(0, 0))
        u = WA.solve(p, inp)["u"][:, -1]
        ex = WA.exact(p, inp["coeffs"], [1.0])[:, 0]
        errs.append(float((u - ex).norm() / ex.norm()))
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    print(boundary, "errors", errs, "orders", orders)
    assert min(orders) >= 1.9
    assert errs[-1] < 2e-3


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
@pytest.mark.parametrize("medium", ["grf", "layered"])
def test_verlet_conserves_discrete_energy(boundary, medium):
    p = _params(boundary=boundary, medium=medium, resolution=32, modes=6, c=1.0, c_sigma=0.3,
                layer_width=0.05)
    inp = WA.sample_inputs(p, 2, sample_generator(0, 1))
    c = inp["c"]
    assert float(c.max() / c.min()) > 1.5  # a genuinely variable medium
    op = W.WaveOperator(c, boundary)
    basis, _ = W.modal_basis(p)
    u0 = op.extend(W.synthesize(inp["coeffs"], basis))
    v0 = torch.zeros_like(u0)
    dt = p.cfl * p.spacing / float(c.max())
    u, v = W.verlet(u0, v0, op, dt, 1000)
    e0, e1 = W.energy(u0, v0, op, dt), W.energy(u, v, op, dt)
    drift = float(((e1 - e0) / e0).abs().max())
    p0, p1 = W.energy(u0, v0, op), W.energy(u, v, op)
    physical = float(((p1 - p0) / p0).abs().max())
    print(boundary, medium, "modified-energy drift", drift, "physical-energy change", physical)
    assert drift <= 1e-4
    assert drift < 1e-12  # symplectic: only round-off
    assert physical < 1e-2  # O(dt^2) oscillation, no growth


def test_variable_medium_converges_in_space():
    # spectral in space: doubling the grid changes the Dirichlet GRF-medium solution little
    sols = []
    for n in (33, 65):
        p = _params(medium="grf", resolution=n, modes=6, c=1.0, t_final=0.5, n_records=1,
                    c_alpha=4.0, c_tau=3.0, dt=1e-3, solver="verlet")
        # the same speed field: drawn on the fine grid and sampled at the coarse nodes
        fine = _params(medium="grf", resolution=65, modes=6, c=1.0, c_alpha=4.0, c_tau=3.0)
        inp = WA.sample_inputs(fine, 1, sample_generator(2, 0))
        inp["c"] = inp["c"][:, :: 64 // (n - 1), :: 64 // (n - 1)]
        sols.append(WA.solve(p, inp)["u"][0, -1])
    diff = float((sols[1][::2, ::2] - sols[0]).norm() / sols[0].norm())
    print("33 vs 65 relative difference", diff)
    assert diff < 1e-4


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
def test_residual_is_second_order_in_record_spacing(boundary):
    rel = []
    for n_records in (100, 200):
        p = _params(boundary=boundary, resolution=32, modes=8, c=1.0, t_final=2.0,
                    n_records=n_records)
        out = WA.solve(p, WA.sample_inputs(p, 1, sample_generator(0, 0)))
        coords = {k: torch.as_tensor(v) for k, (_, v) in WA.coords(p).items()}
        r = WA.residual(out, coords, p)
        u_tt = (out["u"][:, 2:] - 2 * out["u"][:, 1:-1] + out["u"][:, :-2]) / (2.0 / n_records) ** 2
        rel.append(float(r.norm() / u_tt.norm()))
    print(boundary, "relative residuals", rel)
    assert rel[1] < 0.025  # (omega dt)^2 / 12 with omega up to 2 pi c |k| ~ 71
    assert math.log2(rel[0] / rel[1]) >= 1.9


def test_unstable_step_raises_solver_diverged():
    p = _params(resolution=32, modes=6, c=1.0, solver="verlet", dt=0.05, t_final=2.0,
                n_records=1)
    with pytest.raises(pdes.SolverDiverged, match="reduce dt or cfl"):
        WA.solve(p, WA.sample_inputs(p, 1, sample_generator(0, 0)))


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(ValueError, match=r"^c=0.0 is out of range"):
        _params(c=0.0)
    with pytest.raises(ValueError, match=r"^c=-1.0 is out of range"):
        _params(c=-1.0)
    with pytest.raises(ValueError, match="resolution=20 is too small for modes=24"):
        _params(resolution=20)
    with pytest.raises(ValueError, match="resolution=40 is too small for modes=24"):
        _params(resolution=40, boundary="periodic")
    with pytest.raises(ValueError, match="solver='modal' needs medium='constant'"):
        _params(solver="modal", medium="grf")
    p = _params(resolution=16, modes=4)
    inp = WA.sample_inputs(p, 1, sample_generator(0, 0))
    with pytest.raises(ValueError, match="c: the wave speed must be > 0"):
        WA.solve(p, {**inp, "c": -inp["c"]})


def test_cli_generate_matches_exact(tmp_path):
    out = tmp_path / "ds"
    argv = ["generate", "wave2d-cno", "--out", str(out), "--samples", "4",
            "--set", "resolution=32", "--set", "n_records=5", "--quiet"]
    assert cli.main(argv) == 0
    recipe = load_recipe("wave2d-cno").with_changes(
        samples=4, overrides={"resolution": "32", "n_records": "5"})
    coeffs = torch.cat([WA.sample_inputs(recipe.params, 1, sample_generator(recipe.seed, k))
                        ["coeffs"] for k in range(4)])
    ds = open_dataset(out)
    u = torch.from_numpy(ds["u"].values).double()
    ex = WA.exact(recipe.params, coeffs, ds["t"].values)
    assert u.shape == (4, 6, 32, 32)
    assert float((u - ex).abs().max() / ex.abs().max()) < 1e-6  # float32 storage
    assert np.allclose(ds["c"].values, 0.1)


def test_verlet_reports_progress_and_refuses_a_hopelessly_small_step():
    p = _params(resolution=16, modes=4, solver="verlet", t_final=0.4, n_records=4, dt=0.05)
    seen = []
    WA.solve(p, WA.sample_inputs(p, 1, sample_generator(0, 0)), callback=seen.append)
    assert seen == [0.25, 0.5, 0.75, 1.0]
    tiny = _params(resolution=16, modes=4, solver="verlet", t_final=1.0, n_records=1, dt=1e-7)
    with pytest.raises(pdes.SolverDiverged) as e:
        WA.solve(tiny, WA.sample_inputs(tiny, 2, sample_generator(0, 0)))
    assert str(e.value).startswith("wave2d: dt=1e-07 needs more than 1e+06 Verlet steps per "
                                   "record interval 1 (max(c)=0.1)")
    assert e.value.samples == [0, 1]
