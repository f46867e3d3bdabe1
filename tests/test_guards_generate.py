"""Nothing wrong passes silently: bad parameters are refused up front, non-finite solver
output is never written, and unstable or endless time stepping ends in one-line errors."""

import json
import math

import pytest
import torch

from sciops import cli, integrators, pdes
from sciops.data import generate, load_recipe, store
from sciops.errors import SciopsError
from sciops.pdes.base import SolverDiverged

NS_SMALL = ["--set", "resolution=64", "--set", "output_resolution=64", "--set", "t_final=1",
            "--set", "n_records=1"]


def _err(capsys, argv):
    """Run the CLI in-process; it must fail with exit 2 and one line on stderr."""
    code = cli.main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (code, captured.out[-500:], err[-500:])
    assert "dataset complete" not in captured.out
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sciops: error: ")
    return err


def _gen(tmp_path, recipe, *args):
    return ["generate", recipe, "--out", str(tmp_path / "out"), "--quiet", "--samples", "2",
            *args]


@pytest.mark.parametrize("recipe,extra", [
    ("wave2d-cno", ["--set", "modes=8", "--set", "decay=nan"]),
    ("wave2d-cno", ["--set", "modes=8", "--set", "decay=-200"]),
    ("wave2d-cno", ["--set", "modes=8", "--set", "decay=inf"]),
    ("poisson2d-cno", ["--set", "decay=nan"]),
    ("poisson2d-cno", ["--set", "decay=-200"]),
])
def test_decay_out_of_range_is_refused(tmp_path, capsys, recipe, extra):
    err = _err(capsys, _gen(tmp_path, recipe, *extra))
    assert "decay=" in err and "out of range" in err and "allowed [" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("shard-*"))


def test_wave2d_speed_contrast_is_bounded():
    wave = pdes.get("wave2d")
    with pytest.raises(ValueError, match="c_sigma"):
        wave.make_params({"c_sigma": "1e300"})


def test_documented_ranges_accept_the_recipe_defaults():
    for name in ("wave2d-cno", "poisson2d-cno", "ns2d-fno-nu1e-3", "ns2d-kolmogorov-re1000"):
        load_recipe(name)  # validates the parameters
    p = pdes.get("poisson2d").make_params({"decay": "-1.5"})  # rough sources stay allowed
    assert p.decay == -1.5


def _poison_solve(monkeypatch, name, variable, bad_local, value=math.nan):
    """Make ``name``'s solver put ``value`` into ``variable`` of the batch-local samples
    ``bad_local`` of the batch that starts at global index 2 (a stand-in for any plug-in)."""
    cls = type(pdes.get(name))
    real = cls.solve
    calls = {"n": 0}

    def solve(self, params, inputs, *, callback=None):
        out = real(self, params, inputs, callback=callback)
        calls["n"] += 1
        if calls["n"] == 2:
            out[variable] = out[variable].clone()
            out[variable][bad_local] = value
        return out

    monkeypatch.setattr(cls, "solve", solve)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_output_is_never_written(tmp_path, monkeypatch, value):
    recipe = load_recipe("poisson2d-cno").with_changes(
        samples=4, seed=1, overrides={"resolution": "20", "samples_per_shard": "2",
                                      "batch_size": "2"})
    _poison_solve(monkeypatch, "poisson2d", "u", [1], value)
    out = tmp_path / "d"
    with pytest.raises(SciopsError) as info:
        generate(recipe, out, progress=False)
    msg = str(info.value)
    assert "poisson2d-cno" in msg and "'u'" in msg and "[3]" in msg and "\n" not in msg
    assert not json.loads((out / store.MANIFEST).read_text())["complete"]
    assert sorted(p.name for p in out.glob("shard-*.nc")) == ["shard-00000.nc"]
    assert not list(out.glob(".*.tmp"))


def test_non_finite_output_cli_is_one_line(tmp_path, monkeypatch, capsys):
    _poison_solve(monkeypatch, "poisson2d", "f", [0, 1])
    err = _err(capsys, _gen(tmp_path, "poisson2d-cno", "--samples", "4", "--set",
                            "samples_per_shard=2", "--set", "batch_size=2"))
    assert "'f'" in err and "[2, 3]" in err and "non-finite" in err


def test_ns2d_fixed_dt_above_cfl_is_refused(tmp_path, capsys):
    err = _err(capsys, _gen(tmp_path, "ns2d-fno-nu1e-3", "--set", "resolution=64",
                            "--set", "t_final=50", "--set", "n_records=1", "--set", "dt=50",
                            "--set", "output_resolution=64"))
    assert "CFL" in err and "dt <=" in err and "[0, 1]" in err


def test_ns2d_fixed_dt_within_cfl_still_runs():
    ns = pdes.get("ns2d")
    p = ns.make_params({"resolution": "32", "output_resolution": "32", "t_final": "0.1",
                        "n_records": "2", "dt": "0.01"})
    w0 = ns.sample_inputs(p, 2, torch.Generator().manual_seed(0))["w0"]
    assert torch.isfinite(ns.solve(p, {"w0": w0})["vorticity"]).all()


@pytest.mark.parametrize("sigma", ["1e30", "1e300"])
def test_ns2d_huge_ic_sigma_is_refused_up_front(tmp_path, capsys, sigma):
    err = _err(capsys, _gen(tmp_path, "ns2d-fno-nu1e-3", *NS_SMALL, "--set", f"ic_sigma={sigma}"))
    assert "ic_sigma" in err and "out of range" in err


def test_ns2d_fast_flow_within_range_ends_in_one_line(tmp_path, capsys):
    # the largest allowed amplitude with a long record interval: bounded adaptive stepping
    err = _err(capsys, _gen(tmp_path, "ns2d-fno-nu1e-3", *NS_SMALL, "--set", "t_final=1000",
                            "--set", "ic_sigma=1e6"))
    assert "steps" in err and "ic_sigma" in err


def _ode(rate):
    return integrators.SemilinearODE(torch.zeros(1), nonlinear=lambda u: 0 * u,
                                     rate=lambda u: torch.tensor([1.0, rate]))


def test_trajectory_fixed_dt_checks_cfl():
    u0 = torch.ones(2, 1, dtype=torch.complex128)
    ok = list(integrators.trajectory(_ode(10.0), u0, [0.0, 1.0], method="etdrk1", dt=0.1,
                                     cfl_max=1.0))
    assert len(ok) == 2
    with pytest.raises(SolverDiverged) as info:
        list(integrators.trajectory(_ode(30.0), u0, [0.0, 1.0], method="etdrk1", dt=0.1,
                                    cfl_max=2.0))
    assert info.value.samples == [1] and "dt <= 0.0667" in str(info.value)
    # without a limit the old behaviour stays
    assert len(list(integrators.trajectory(_ode(30.0), u0, [0.0, 1.0], method="etdrk1",
                                           dt=0.1))) == 2


def test_trajectory_step_count_is_bounded():
    u0 = torch.ones(2, 1, dtype=torch.complex128)
    with pytest.raises(SolverDiverged) as info:  # adaptive: would need 1e13 steps
        list(integrators.trajectory(_ode(1e12), u0, [0.0, 1.0], method="etdrk1", cfl=0.1))
    assert info.value.samples == [1] and "steps" in str(info.value)
    with pytest.raises(SolverDiverged, match="steps"):  # fixed: 1e12 steps
        list(integrators.trajectory(_ode(0.0), u0, [0.0, 1.0], method="etdrk1", dt=1e-12))


def test_solver_diverged_during_generate_is_one_line(tmp_path, capsys):
    # Verlet far above its stability limit (dt c / h ~ 3 > 0.45)
    err = _err(capsys, _gen(tmp_path, "wave2d-cno", "--set", "modes=8", "--set",
                            "resolution=16", "--set", "solver=verlet", "--set", "dt=2",
                            "--set", "c=1.0"))
    assert "diverged" in err and "wave2d-cno" in err and "[0, 1]" in err


def test_ns2d_fixed_dt_step_count_is_refused_up_front():
    with pytest.raises(ValueError, match="dt=1e-09 needs 1e"):
        pdes.get("ns2d").make_params({"dt": "1e-9", "t_final": "1", "n_records": "1"})


def test_wave2d_verlet_step_count_is_bounded():
    wave = pdes.get("wave2d")
    p = wave.make_params({"modes": "4", "resolution": "16", "solver": "verlet", "c": "1e7"})
    inputs = wave.sample_inputs(p, 2, torch.Generator().manual_seed(0))
    with pytest.raises(SolverDiverged, match="Verlet steps") as info:
        wave.solve(p, inputs)
    assert info.value.samples == [0, 1]
