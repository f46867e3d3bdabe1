"""PINN: model embeddings, collocation, the physics task in the shared trainer, ``sciops solve``.

Every test asserts a number: errors against exact solutions, exactness of periodic and
Dirichlet embeddings, point-set statistics, bitwise resume.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import xarray as xr

from sciops import models, pdes
from sciops.cli import main
from sciops.pdes.base import Domain, PointSample, dirichlet
from sciops.train.physics import (
    PhysicsTask,
    PinnConfig,
    Problem,
    solve_methods,
    train_pinn,
    unit_points,
)
from sciops.train.trainer import Trainer

torch.set_num_threads(1)


def poisson1d() -> Problem:
    """``-u'' = pi² sin(pi x)`` on [0, 1], ``u(0) = u(1) = 0``: the residual of poisson2d
    (its autograd backend in one coordinate), exact ``u = sin(pi x)``."""
    pde = pdes.get("poisson2d")
    params = pde.make_params()
    domain = Domain({"x": (0.0, 1.0)}, ("u",),
                    conditions=(dirichlet("x=0", "x", 0.0, "u"), dirichlet("x=1", "x", 1.0, "u")))
    sample = PointSample(lambda c: {"f": math.pi**2 * torch.sin(math.pi * c["x"])},
                         lambda c: {"u": torch.sin(math.pi * c["x"])})
    return Problem(lambda f, c: pde.residual(f, c, params), domain, sample)


@pytest.mark.parametrize("bc", ["soft", "exact"])
def test_pinn_solves_1d_poisson_to_1e_3(tmp_path, bc):
    cfg = PinnConfig(n_interior=64, n_boundary=1, adam_steps=300, lr=3e-3, lbfgs_steps=200,
                     bc=bc, model={"width": 32, "depth": 2})
    result = train_pinn(poisson1d(), cfg, tmp_path)
    assert result.task.metric == "test_rel_l2" and result.test_error <= 1e-3
    x = torch.linspace(0, 1, 101, dtype=torch.float64)[:, None]
    u = result.predict(x)["u"]
    err = float((u - torch.sin(math.pi * x[:, 0])).norm() / torch.sin(math.pi * x[:, 0]).norm())
    assert err <= 1e-3
    # the trainer ran the Adam phase: its log and checkpoints are in the run directory; then
    # one line per L-BFGS loss evaluation, the last with the final error
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    adam = [r for r in log if "phase" not in r]
    lbfgs = [r for r in log if r.get("phase") == "lbfgs"]
    assert adam[-1]["step"] == 300 and (tmp_path / "final.pt").is_file()
    assert [r["loss"] for r in lbfgs] == result.lbfgs_losses and len(lbfgs) >= 2
    assert [r["evaluation"] for r in lbfgs] == list(range(1, len(lbfgs) + 1))
    assert lbfgs[-1]["test_rel_l2"] == result.test_error


def test_exact_dirichlet_ansatz_holds_before_training():
    pde = pdes.get("wave2d")
    params = pde.make_params({"modes": 3, "resolution": 8, "t_final": 1.0})
    inputs = pde.sample_inputs(params, 1, torch.Generator().manual_seed(0))
    sample = pde.point_sample(params, inputs)
    task = PhysicsTask(Problem.from_pde(pde, params, sample),
                       PinnConfig(bc="exact", n_interior=16, model={"dtype": "float64"}))
    # only u_t(t=0) = 0 is left to the penalty; u = u0 at t=0 and u = 0 on the sides are exact
    assert [c.name for c in task.penalized] == ["u_t(t=0)"]
    torch.manual_seed(0)
    net = models.build("pinn", in_channels=3, out_channels=1, dtype="float64")
    g = torch.Generator().manual_seed(1)
    for name, value in (("t", 0.0), ("x", 0.0), ("x", 1.0), ("y", 1.0)):
        pts = {k: torch.rand(50, generator=g, dtype=torch.float64) for k in ("t", "x", "y")}
        pts[name] = torch.full((50,), value, dtype=torch.float64)
        fields = task.fields(net, pts)
        target = fields["u0"] if name == "t" else torch.zeros(50, dtype=torch.float64)
        assert float((fields["u"] - target).detach().abs().max()) < 1e-15


def test_periodic_embedding_is_exactly_periodic_and_bounds_map_to_unit_box():
    torch.manual_seed(0)
    net = models.build("pinn", in_channels=3, out_channels=2, lower=[0, 0, 0],
                       upper=[2, 1, 1], periods=[None, 1.0, 1.0], periodic_modes=3,
                       fourier_features=16, fourier_scales=[1.0, 5.0], dtype="float64")
    x = torch.rand(100, 3, dtype=torch.float64)
    shifted = x + torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    assert float((net(x) - net(shifted)).detach().abs().max()) < 1e-12
    # the time-like axis is not periodic
    later = x + torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert float((net(x) - net(later)).detach().abs().max()) > 1e-3
    ends = torch.tensor([[0.0, 0, 0], [2.0, 0, 0]], dtype=torch.float64)
    assert net.embed(ends)[:, 0].tolist() == [-1.0, 1.0]
    # multi-scale: one feature map per scale, their standard deviations as configured
    assert [round(float(b.std()), 0) for b in net.B] == [1.0, 5.0]


def test_collocation_sampling():
    sob = unit_points(1024, 2, "sobol", seed=0)
    uni = unit_points(1024, 2, "uniform", seed=0)
    # scrambled Sobol integrates smooth functions far better than i.i.d. points
    f = lambda p: torch.sin(math.pi * p[:, 0]) * torch.sin(math.pi * p[:, 1])  # noqa: E731
    exact = (2 / math.pi) ** 2
    assert abs(float(f(sob).mean()) - exact) < 1e-3 < abs(float(f(uni).mean()) - exact) + 1e-3
    grid = unit_points(100, 2, "grid", seed=0)
    assert grid.shape == (100, 2) and float(grid.min()) > 0 and float(grid.max()) < 1
    task = PhysicsTask(poisson1d(), PinnConfig(n_interior=50, sampling="uniform"))
    faces = task.points.faces()
    assert [f.tolist() for f in faces] == [[[0.0]], [[1.0]]]
    assert 0 < float(task.points.interior.min()) and float(task.points.interior.max()) < 1


def test_residual_adaptive_resampling_concentrates_points():
    """RAR-D with a residual peaked at x = 0.5: more than twice the uniform share of the
    points (10%) land within 0.05 of the peak."""
    peak = Problem(lambda f, c: 100 * torch.exp(-((c["x"] - 0.5) / 0.02) ** 2) + 0 * f["u"],
                   Domain({"x": (0.0, 1.0)}, ("u",)), PointSample(lambda c: {}))
    task = PhysicsTask(peak, PinnConfig(n_interior=500, sampling="uniform", resample_every=1))
    before = float(((task.points.interior - 0.5).abs() < 0.05).double().mean())
    torch.manual_seed(0)
    net = models.build("pinn", in_channels=1, out_channels=1)
    task.loss(net, (task.points.interior[None],))
    after = float(((task.points.interior - 0.5).abs() < 0.05).double().mean())
    assert before < 0.12 and after > 0.25


def test_physics_task_resumes_bitwise_in_the_shared_trainer(tmp_path):
    cfg = PinnConfig(n_interior=32, adam_steps=12, steps_per_epoch=4, resample_every=5,
                     lbfgs_steps=0, model={"width": 16, "depth": 2})

    def trainer(run_dir):
        task = PhysicsTask(poisson1d(), cfg)
        from sciops.train.physics import run_config
        return Trainer(run_config(task, cfg), run_dir, progress=False, task=task)

    full = trainer(tmp_path / "full")
    full.fit()
    part = trainer(tmp_path / "part")
    part.fit(max_steps=8)
    resumed = trainer(tmp_path / "part")
    resumed.fit(resume=True)
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(full.task.points.interior, resumed.task.points.interior)
    assert int(resumed.task.points.step) == 12


def test_cli_solve_pinn_end_to_end(tmp_path):
    out = tmp_path / "anti"
    code = main(["solve", "antiderivative1d", "--method", "pinn", "--set", "resolution=51",
                 "--set", "length_scale=0.5", "--option", "adam_steps=300",
                 "--option", "lbfgs_steps=200", "--option", "n_interior=128",
                 "--option", "lr=3e-3", "--option", "model.width=32", "--option",
                 "model.depth=2", "--out", str(out), "--quiet"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference"] == "exact solution" and summary["rel_l2"]["u"] < 1e-2
    ds = xr.open_dataset(out / "solution.nc", engine="h5netcdf")
    err = float(((ds.u - ds.u_reference) ** 2).sum() ** 0.5 / (ds.u_reference**2).sum() ** 0.5)
    assert ds.u.dims == ("x",) and ds.x.size == 51
    assert abs(err - summary["rel_l2"]["u"]) < 1e-12
    # the log names its test error honestly: against the exact solution
    log = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "test_rel_l2" in log[-1] and not any("residual_rms" in r for r in log)
    assert (out / "solution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_solve_gp_kron_and_errors(tmp_path, capsys):
    out = tmp_path / "gp"
    code = main(["solve", "poisson2d", "--method", "gp-kron", "--set", "resolution=24",
                 "--set", "source=multiscale", "--set", "k_max=6", "--set", "n_terms=2",
                 "--option", "steps=100", "--option", "lbfgs_steps=0", "--out", str(out)])
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["rel_l2"]["u"] < 1e-3
    code = main(["solve", "poisson2d", "--option", "bogus=1", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown option 'bogus'" in err and len(err.strip().splitlines()) == 1
    for pde, method, why in (("darcy2d", "pinn", "no pointwise strong form"),
                             ("ks2d", "pinn", "box average"), ("heat1d", "gp-kron", ""),
                             ("les3d", "pinn", "grid field")):
        code = main(["solve", pde, "--method", method, "--out", str(tmp_path / "y")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"sciops: error: {pde} cannot be solved by "
                                            f"--method {method} (it needs ")
        assert err.count("\n") == 1 and "`sciops list pdes`" in err and why in err
    assert not (tmp_path / "y").exists()


def test_solve_methods_is_the_one_source():
    got = {name: solve_methods(pdes.get(name)) for name in
           ("heat1d", "wave2d", "antiderivative1d", "poisson2d", "ks2d", "darcy2d", "ns2d")}
    assert got == {"heat1d": ("pinn",), "wave2d": ("pinn",), "antiderivative1d": ("pinn",),
                   "poisson2d": ("pinn", "gp-kron"), "ks2d": (), "darcy2d": (), "ns2d": ("pinn",)}


def test_cli_solve_pinn_without_closed_form_compares_with_the_reference_solver(tmp_path,
                                                                              capsys):
    """heat1d's instance (a random initial field) has no closed form: the error is taken
    against heat1d's own solver on the stored grid, and the log says residual_rms."""
    out = tmp_path / "heat"
    code = main(["solve", "heat1d", "--set", "resolution=16", "--set", "n_records=4",
                 "--set", "dtype=float64", "--option", "adam_steps=60",
                 "--option", "lbfgs_steps=20", "--option", "n_interior=64",
                 "--option", "steps_per_epoch=30", "--option", "model.width=16",
                 "--option", "model.depth=2", "--out", str(out), "--quiet"])
    assert code == 0
    line = capsys.readouterr().out.strip()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference"] == "heat1d reference solver"
    assert line.startswith("heat1d by pinn in ") and line.endswith(
        f"rel. L2 vs the heat1d reference solver: u {summary['rel_l2']['u']:.3g}; wrote "
        f"solution.nc, solution.png, summary.json, run/ to {out}")
    pde = pdes.get("heat1d")
    params = pde.make_params({"resolution": 16, "n_records": 4, "dtype": "float64"})
    inputs = pde.sample_inputs(params, 1, torch.Generator().manual_seed(0))
    ds = xr.open_dataset(out / "solution.nc", engine="h5netcdf")
    assert ds.u.dims == ("time", "x") and ds.u.shape == (5, 16)
    # the reference is the solver's output for this instance: it starts from its u0
    ref = pde.solve(params, inputs)["u"][0].numpy()
    assert abs(ds.u_reference.values - ref).max() == 0.0
    assert abs(ds.u_reference.values[0] - inputs["u0"][0].numpy()).max() < 1e-12
    err = float(((ds.u - ds.u_reference) ** 2).sum() ** 0.5 / (ds.u_reference**2).sum() ** 0.5)
    assert abs(err - summary["rel_l2"]["u"]) < 1e-12 and err < 1.0
    log = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert not any("test_rel_l2" in r for r in log)
    assert [r["epoch"] for r in log if "residual_rms" in r and "phase" not in r] == [2]
    lbfgs = [r for r in log if r.get("phase") == "lbfgs"]
    assert len(lbfgs) >= 2 and "residual_rms" in lbfgs[-1]
    assert (out / "solution.png").stat().st_size > 10_000


@pytest.mark.slow
def test_cli_solve_wave2d_standing_wave_with_exact_initial_and_boundary_conditions(tmp_path):
    """Space-time PINN from the wave2d definition: u = u0 at t=0 and u = 0 on the sides by
    the distance ansatz, u_t(0) = 0 by penalty (measured 2.6e-4, ~40 s of CPU)."""
    code = main(["solve", "wave2d", "--set", "modes=1", "--set", "c=0.5", "--set",
                 "t_final=1.0", "--set", "resolution=9", "--set", "n_records=4",
                 "--option", "adam_steps=1000", "--option", "lbfgs_steps=300",
                 "--option", "n_interior=1000", "--option", "n_boundary=128",
                 "--option", "lr=3e-3", "--option", "bc=exact", "--option", "model.width=32",
                 "--out", str(tmp_path), "--quiet"])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["grid"] == [5, 9, 9] and summary["rel_l2"]["u"] < 5e-3


def test_lbfgs_ending_on_a_non_finite_loss_restores_its_starting_weights():
    """L-BFGS's line search can step into overflow; the weights it started from come back
    and the last loss reported is theirs (finite), never NaN weights."""
    from types import SimpleNamespace

    from sciops.train.physics import lbfgs

    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.5)
    p = model.weight
    task = SimpleNamespace(full_loss=lambda m: ((p - 3) ** 2).sum()
                           + torch.where(p > 1, torch.nan, 0.0).sum())
    losses = lbfgs(model, task, steps=5)
    w = float(model.weight.detach())
    assert 0.5 <= w <= 1 and losses[-1] == pytest.approx((w - 3) ** 2, rel=1e-6)
