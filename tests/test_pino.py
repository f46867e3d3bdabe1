"""PINO / LESnets on les3d: the loss is the LES residual; training lowers it, beats persistence."""

import math

import numpy as np
import pytest
import torch

from sciops import pdes, spectral
from sciops.train.config import RunConfig, TrainConfig
from sciops.train.pino import (
    PinoConfig,
    PinoTask,
    band_mean_square,
    les_operators,
    physics_loss,
    residual_hat,
    seeded_fields,
    solver_trajectories,
)
from sciops.train.trainer import Trainer

LES = pdes.get("les3d")
# 16³ grid: the LES band is |m_i| <= 5, so the initial spectrum peaks at k0 = 2
SMALL = {"resolution": 16, "k0": 2.0}


def _stack(dt: float, dtype: str = "float64"):
    p = LES.make_params({**SMALL, "dtype": dtype})
    u0 = seeded_fields(p, [5])
    traj = solver_trajectories(p, u0, 4 * dt, 4)  # (1, 5, 3, n, n, n)
    return p, traj


def test_band_residual_is_the_pde_residual():
    p, traj = _stack(0.01)
    ops = les_operators(p, torch.device("cpu"), torch.float64)
    mine = residual_hat(ops, spectral.rfft(traj, 3), 0.01)[0] * ops.mask
    fields = {c: traj[:, :, i] for i, c in enumerate("uvw")}
    ref = spectral.rfft(LES.residual(fields, {"t": np.arange(5) * 0.01}, p), 3) * ops.mask
    err = float((mine - ref).abs().max() / ref.abs().max())
    print("adapter vs LES3D.residual", err)
    assert err < 1e-9


def test_loss_vanishes_on_solver_frames_and_not_on_perturbed_ones():
    p, traj = _stack(0.01)
    ops = les_operators(p, torch.device("cpu"), torch.float64)
    stack = spectral.rfft(traj, 3)
    exact = float(physics_loss(ops, stack, 0.01))
    g = torch.Generator().manual_seed(1)
    noise = ops.project(spectral.rfft(torch.randn(traj[:, 2].shape, generator=g,
                                                  dtype=torch.float64), 3))
    # 1% of the velocity's rms on one inner frame
    noise *= 0.01 * (band_mean_square(ops, stack[:, 2]) / band_mean_square(ops, noise)).sqrt()
    bad = stack.clone()
    bad[:, 2] += noise
    perturbed = float(physics_loss(ops, bad, 0.01))
    still = stack[:, :1].expand_as(stack)
    persistence = float(physics_loss(ops, still, 0.01))
    print("loss on solver frames", exact, "perturbed", perturbed, "persistence", persistence)
    assert exact < 1e-5  # second-order time differencing at dt = 0.01
    assert perturbed > 1e3 * exact
    assert persistence == pytest.approx(1.0, abs=1e-12)  # the loss's unit


def test_time_differencing_is_second_order():
    losses = []
    for dt in (0.04, 0.02):
        p, traj = _stack(dt)
        ops = les_operators(p, torch.device("cpu"), torch.float64)
        losses.append(float(physics_loss(ops, spectral.rfft(traj, 3), dt)))
    order = math.log2(math.sqrt(losses[0] / losses[1]))
    print("residual L2 order", order, losses)
    assert 1.8 < order < 2.3


def _task(steps: int, hidden: int, n_train: int, n_test: int, **train):
    # n_modes 8 keeps |m| <= 4 of the band |m| <= 5; one wide layer learns fastest per CPU
    # second here; no positional embedding: the flow is periodic and homogeneous
    model = {"name": "fno", "n_modes": [8, 8, 8], "hidden_channels": hidden, "n_layers": 1,
             "positional_embedding": None}
    p = LES.make_params(SMALL)
    task = PinoTask(p, PinoConfig(n_train=n_train, n_test=n_test, t_max=2.0, seed=3))
    cfg = RunConfig(model=model, train=TrainConfig(
        epochs=math.ceil(steps / n_train), batch_size=1, lr=1e-2, weight_decay=0.0,
        scheduler="cosine", seed=0, **train))
    return task, cfg


def _test_scores(task: PinoTask, model) -> dict[str, float]:
    """Means over the test windows: physics loss, relative L2 error of the next frame and of
    all K frames against the LES solver, and those of persistence (u0 repeated)."""
    rows = []
    with torch.no_grad():
        for i in range(len(task.test_set)):
            _, u0, y = task.test_set[i]
            _, phys, frames = task.sample_losses(model, (torch.tensor(0), u0[None], y[None]))
            rows.append({"physics": float(phys),
                         "next": float((frames[0, 0] - y[0]).norm() / y[0].norm()),
                         "next_still": float((u0 - y[0]).norm() / y[0].norm()),
                         "all": float((frames[0] - y).norm() / y.norm()),
                         "all_still": float((u0 - y).norm() / y.norm())})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def test_physics_only_training_beats_persistence(tmp_path):
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


def test_resume_restores_the_input_pool(tmp_path):
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
def test_bad_options_name_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        PinoConfig(**options)
