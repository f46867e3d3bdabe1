"""PINO: the physics loss is each PDE's own grid residual (zero on its solution, not with a wrong
term); `sciops train` with [physics] trains data + residual; LESnets is its data-free les3d case."""

import json
import math

import numpy as np
import pytest
import torch

from sciops import pdes
from sciops.cli import main as cli_main
from sciops.data import open_dataset
from sciops.train.config import RunConfig, TrainConfig, load_run_config
from sciops.train.pino import (
    PinoTask,
    RolloutConfig,
    RolloutTask,
    dataset_pde,
    physics_loss,
    solver_trajectories,
)
from sciops.train.trainer import Trainer

LES = pdes.get("les3d")
# 16³ grid: the LES band is |m_i| <= 5, so the initial spectrum peaks at k0 = 2
SMALL = {"resolution": 16, "k0": 2.0}
BURGERS = ["resolution=64", "n_records=10", "t_final=0.1", "nu=0.02", "ic_kinks=0", "dt=1e-3",
           "ic_modes=2"]


@pytest.fixture(scope="module")
def burgers(tmp_path_factory):
    """A small burgers1d dataset (8 samples, 64 points, 11 records 0.01 apart)."""
    out = tmp_path_factory.mktemp("pino") / "burgers"
    argv = ["generate", "burgers1d-pdebench", "--out", str(out), "--samples", "8", "--quiet"]
    for s in BURGERS:
        argv += ["--set", s]
    assert cli_main(argv) == 0
    return out


def _records(data):
    with open_dataset(data) as ds:
        return torch.as_tensor(ds["u"].values).double(), ds["t"].values


def test_burgers_physics_loss_vanishes_on_the_solution_only(burgers):
    pde, p = dataset_pde(burgers)  # from the manifest
    assert pde.name == "burgers1d" and p.nu == 0.02
    u, t = _records(burgers)
    exact = physics_loss(pde, p, {"u": u}, t)
    wrong = physics_loss(pde, p.replace(nu=0.03), {"u": u}, t)
    still = physics_loss(pde, p, {"u": u[:, :1].expand_as(u)}, t)
    print("exact", exact.max(), "wrong nu", wrong.min())
    assert float(exact.max()) < 1e-3  # 4th-order time differences of 0.01-spaced records
    assert float(wrong.min()) > 1e-2 and float(wrong.mean()) > 100 * float(exact.mean())
    assert torch.allclose(still, torch.ones_like(still), rtol=1e-12)  # the loss's unit


def test_ns2d_physics_loss_vanishes_on_the_solution_only():
    pde = pdes.get("ns2d")
    p = pde.make_params({"resolution": 32, "output_resolution": 32, "t_final": 0.5,
                        "n_records": 20, "dtype": "float64"})
    w = pde.solve(p, pde.sample_inputs(p, 2, torch.Generator().manual_seed(0)))["vorticity"]
    t = pde.coords(p)["t"][1]
    exact = physics_loss(pde, p, {"vorticity": w}, t)
    wrong = physics_loss(pde, p.replace(nu=2 * p.nu), {"vorticity": w}, t)
    print("exact", exact, "wrong nu", wrong)
    assert float(exact.max()) < 1.5e-3  # 2nd-order time differences, undealiased products
    assert float(wrong.min()) > 30 * float(exact.max())


def _burgers_run(burgers, tmp_path, name, weight):
    sets = {"data.train_samples": 4, "data.test_samples": 2, "data.out_steps": 10,
            "train.epochs": 20, "train.batch_size": 2, "train.lr": 3e-3, "model.n_modes": 8,
            "model.hidden_channels": 16, "model.n_layers": 2, "physics.weight": weight,
            "physics.unlabeled": 0}
    argv = ["train", "pino-burgers1d", "--data", str(burgers), "--out", str(tmp_path / name),
            "--threads", "1", "--quiet"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    assert cli_main(argv) == 0
    return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]


def test_train_with_physics_logs_and_lowers_the_residual(burgers, tmp_path):
    with_physics = _burgers_run(burgers, tmp_path, "pino", 1.0)
    data_only = _burgers_run(burgers, tmp_path, "data", 0.0)
    first, last, other = with_physics[0], with_physics[-1], data_only[-1]
    print("physics: first", first, "last", last, "data only: last", other)
    assert all(math.isfinite(r["test_physics"]) for r in with_physics)
    assert last["test_physics"] < first["test_physics"] / 2  # measured 10.7 vs 36.7
    assert last["test_physics"] < other["test_physics"] / 4  # data only: 82


def test_physics_needs_the_residual_fields(burgers, tmp_path, capsys):
    code = cli_main(["train", "pino-burgers1d", "--data", str(burgers), "--out",
                     str(tmp_path / "r"), "--set", "data.out_steps=1", "--set",
                     "data.train_samples=4", "--set", "data.test_samples=2", "--set",
                     "physics.unlabeled=0", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "3 records" in err, err
    code = cli_main(["train", "pino-burgers1d", "--data", str(burgers), "--out",
                     str(tmp_path / "r"), "--set", "data.train_samples=4", "--set",
                     "data.test_samples=2", "--set", "data.out_steps=10",
                     "--quiet"])  # the recipe's 256 unlabeled samples
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "physics.unlabeled=256" in err, err


@pytest.mark.parametrize("value, field", [("-1", "weight"), ("nan", "weight")])
def test_bad_physics_table_is_one_line(value, field):
    with pytest.raises(Exception, match=f"physics.*{field}"):
        load_run_config("pino-burgers1d", {"physics.weight": value})


def test_pino_recipes_read_physics():
    for name in ("pino-burgers1d", "pino-ns2d"):
        cfg = load_run_config(name)
        assert cfg.physics is not None and cfg.physics.weight == 0.1
        assert cfg.to_dict()["physics"] == {"weight": 0.1, "unlabeled": cfg.physics.unlabeled}
        assert cfg.physics.unlabeled > 0
    assert load_run_config("fno-burgers1d").physics is None


# -- les3d: LESnets, the data-free case ------------------------------------------------------

def _les(dt: float):
    p = LES.make_params({**SMALL, "dtype": "float64"})
    traj = solver_trajectories(LES, p, [5], "uvw", 4 * dt, 4).double()  # (1, 5, 3, n, n, n)
    return p, traj, {c: traj[:, :, i] for i, c in enumerate("uvw")}, np.arange(5) * dt


def test_les_loss_vanishes_on_solver_frames_and_not_on_perturbed_ones():
    p, traj, fields, t = _les(0.01)
    exact = float(physics_loss(LES, p, fields, t))
    g = torch.Generator().manual_seed(1)
    noise = LES.project({c: torch.randn(traj[:, 2, 0].shape, generator=g, dtype=torch.float64)
                         for c in "uvw"}, p)
    # 1% of the velocity's rms on one inner frame
    scale = 0.01 * traj[:, 2].square().mean().sqrt() / torch.stack(
        list(noise.values())).square().mean().sqrt()
    bad = {c: v.clone() for c, v in fields.items()}
    for c in "uvw":
        bad[c][:, 2] += scale * noise[c]
    perturbed = float(physics_loss(LES, p, bad, t))
    persistence = float(physics_loss(LES, p, {c: v[:, :1].expand_as(v)
                                              for c, v in fields.items()}, t))
    print("loss on solver frames", exact, "perturbed", perturbed, "persistence", persistence)
    assert exact < 1e-5  # second-order time differencing at dt = 0.01
    assert perturbed > 1e3 * exact
    assert persistence == pytest.approx(1.0, abs=1e-12)


def test_les_time_differencing_is_second_order():
    losses = []
    for dt in (0.04, 0.02):
        p, _, fields, t = _les(dt)
        losses.append(float(physics_loss(LES, p, fields, t)))
    order = math.log2(math.sqrt(losses[0] / losses[1]))
    print("residual L2 order", order, losses)
    assert 1.8 < order < 2.3


def _task(steps: int, hidden: int, n_train: int, n_test: int, **train):
    # n_modes 8 keeps |m| <= 4 of the band |m| <= 5; one wide layer learns fastest per CPU
    # second here; no positional embedding: the flow is periodic and homogeneous
    model = {"name": "fno", "n_modes": [8, 8, 8], "hidden_channels": hidden, "n_layers": 1,
             "positional_embedding": None}
    task = RolloutTask(LES, LES.make_params(SMALL),
                       RolloutConfig(n_train=n_train, n_test=n_test, t_max=2.0, seed=3))
    cfg = RunConfig(model=model, train=TrainConfig(
        epochs=math.ceil(steps / n_train), batch_size=1, lr=1e-2, weight_decay=0.0,
        scheduler="cosine", seed=0, **train))
    return task, cfg


def _test_scores(task: RolloutTask, model) -> dict[str, float]:
    """Means over the test windows: physics loss, relative L2 error of the next record and of
    all K records against the LES solver, and those of persistence (u0 repeated)."""
    rows = []
    with torch.no_grad():
        for i in range(len(task.test_set)):
            _, u0, y = task.test_set[i]
            _, phys, stack = task.sample_losses(model, (torch.tensor(0), u0[None], y[None]))
            frames = stack[0, 1:]
            rows.append({"physics": float(phys),
                         "next": float((frames[0] - y[0]).norm() / y[0].norm()),
                         "next_still": float((u0 - y[0]).norm() / y[0].norm()),
                         "all": float((frames - y).norm() / y.norm()),
                         "all_still": float((u0 - y).norm() / y.norm())})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def test_les_physics_only_training_beats_persistence(tmp_path):
    torch.set_num_threads(1)
    task, cfg = _task(steps=300, hidden=32, n_train=8, n_test=1)
    trainer = Trainer(cfg, tmp_path / "run", task=task, progress=False)
    task.prepare()
    before = _test_scores(task, trainer.model)
    trainer.fit()
    after = _test_scores(task, trainer.model)
    print("before", before, "after", after, "pool draws", int(task.pool.draws))
    assert after["physics"] < before["physics"] / 3
    assert after["next"] < after["next_still"] / 1.5
    assert after["all"] < after["all_still"] / 1.5
    assert int(task.pool.draws) > 8  # predictions were fed back and fields restarted


def test_les_resume_restores_the_input_pool(tmp_path):
    def run(name, max_steps=None, resume=False):
        task, cfg = _task(steps=6, hidden=4, n_train=3, n_test=0, checkpoint_every=1)
        trainer = Trainer(cfg, tmp_path / name, task=task, progress=False)
        trainer.fit(resume=resume, max_steps=max_steps)
        return trainer, task

    full, full_task = run("full")
    run("part", max_steps=4)
    resumed, resumed_task = run("part", resume=True)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert torch.equal(full_task.pool.fields, resumed_task.pool.fields)
    assert torch.equal(full_task.pool.time, resumed_task.pool.time)


@pytest.mark.parametrize("options, field", [
    ({"n_steps": 0}, "n_steps"), ({"dt": 0.0}, "dt"), ({"inputs": "labels"}, "inputs"),
    ({"data_weight": 1.0}, "data_weight"), ({"physics_weight": 0.0}, "physics_weight"),
    ({"t_max": 0.2}, "t_max")])
def test_bad_rollout_options_name_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        RolloutConfig(**options)


def test_pino_task_is_the_supervised_task_plus_the_weighted_residual(burgers):
    from sciops.train.task import SupervisedTask

    cfg = load_run_config("pino-burgers1d", {
        "data.dataset": str(burgers), "data.train_samples": "2", "data.test_samples": "1",
        "data.out_steps": "10", "model.n_modes": "4", "model.hidden_channels": "4",
        "physics.weight": "0.5", "physics.unlabeled": "3"})
    task = PinoTask(cfg)
    torch.manual_seed(0)
    model = Trainer(cfg, "/nonexistent", task=task, progress=False).model
    x, y, u = (torch.stack(v) for v in zip(task.train_set[0], task.train_set[1]))
    # samples 3, 4, 5 follow the split; pair i carries windows i, i + 2 (mod 3) of them
    u0 = _records(burgers)[0][3:6, 0].float()
    assert u.shape == (2, 2, 1, 64)
    assert torch.equal(u[:, :, 0], u0[torch.tensor([[0, 2], [1, 0]])])
    task.prepare()
    with torch.no_grad():
        assert float(task.physics(x, y).mean()) < 1e-3  # the labels: the PDE's solution
        xs = torch.cat([x, u.flatten(0, 1)])
        phys = float(task.physics(xs, task.predict(model, xs)).mean())
        assert phys > 1.0  # an untrained model: worse than persistence
        data = float(SupervisedTask.loss(task, model, (x, y)))
        assert float(task.loss(model, (x, y, u))) == pytest.approx(data + 0.5 * phys, rel=1e-6)
