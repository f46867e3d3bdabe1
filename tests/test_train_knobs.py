"""Training knobs: normalization choice, warm-up/cosine/restart schedules, --threads."""

import math

import pytest
import torch
import xarray as xr

from sciops import cli
from sciops.data import generate, load_recipe
from sciops.errors import SciopsError
from sciops.train import Trainer, build_config
from sciops.train.config import TrainConfig
from sciops.train.predict import predict_dataset
from sciops.train.task import WindowedPairs, ordered_batches
from sciops.train.trainer import build_scheduler

TINY = {"resolution": "16", "output_resolution": "16", "t_final": "4", "n_records": "4",
        "samples_per_shard": "12", "batch_size": "12", "nu": "1e-3"}


@pytest.fixture(scope="module")
def ns_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ns")
    r = load_recipe("ns2d-fno-nu1e-3").with_changes(samples=12, overrides=TINY)
    return generate(r, root / "ns", progress=False).out


def _raw(data, **train):
    return {"name": "t",
            "model": {"name": "fno", "n_modes": [4, 4], "hidden_channels": 6, "n_layers": 1},
            "data": {"dataset": str(data), "in_steps": 2, "out_steps": 2, "train_samples": 8,
                     "test_samples": 4},
            "train": {"epochs": 3, "batch_size": 4, "lr": 1e-3, "seed": 1, **train}}


def test_normalize_modes_fit_only_what_they_name(ns_data, tmp_path):
    stats = {}
    for mode in ("both", "output", "none"):
        task = Trainer(build_config(_raw(ns_data, normalize=mode)), tmp_path / mode,
                       progress=False).task
        task.prepare()
        stats[mode] = {k: (m.mean.clone(), m.std.clone())
                       for k, m in task.state_modules().items()}
    zero, one = torch.zeros(2), torch.ones(2)
    for k in ("x", "y"):  # 'both' fits each side: a vorticity std is not 1
        assert not torch.allclose(stats["both"][k][1], one)
    assert torch.equal(stats["output"]["x"][0], zero) and torch.equal(stats["output"]["x"][1], one)
    assert torch.equal(stats["output"]["y"][1], stats["both"]["y"][1])
    for k in ("x", "y"):
        assert torch.equal(stats["none"][k][0], zero) and torch.equal(stats["none"][k][1], one)


def test_run_without_normalization_predicts_as_the_bare_model(ns_data, tmp_path):
    cfg = build_config(_raw(ns_data, normalize="none", epochs=1))
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    trainer.fit()  # one epoch: best.pt holds the final weights
    out = predict_dataset(tmp_path / "run", ns_data, tmp_path / "pred.nc")
    pairs = WindowedPairs(ns_data, cfg.data, range(12))
    x = torch.cat([b[0] for b in ordered_batches(pairs)])
    with torch.no_grad():
        direct = trainer.model.eval()(x).numpy()
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["vorticity"].shape == direct.shape
        assert abs(ds["vorticity"].values - direct).max() < 1e-6


def test_loss_units_normalized_compares_raw_output_with_standardized_targets(ns_data, tmp_path):
    """neuraloperator's convention: the loss of model(x) against (y - mean) / std; sciops'
    default decodes the prediction and compares in data units (an mse differs by std²)."""
    from sciops.train.losses import mse
    losses = {}
    for units in ("data", "normalized"):
        task = Trainer(build_config(_raw(ns_data, normalize="output", loss="mse",
                                         loss_units=units)), tmp_path / units,
                       progress=False).task
        task.prepare()
        torch.manual_seed(0)
        model = torch.nn.Conv2d(2, 2, 1)
        x, y = next(ordered_batches(task.train_set, 4))
        losses[units] = float(task.loss(model, (x, y)).detach())
        raw = model(x)
        std = task.y_norm.std.view(1, -1, 1, 1)
        expected = {"data": mse(task.y_norm.decode(raw), y),
                    "normalized": mse(raw, (y - task.y_norm.mean.view(1, -1, 1, 1)) / std)}
        assert losses[units] == pytest.approx(float(expected[units].detach()), rel=1e-5)
    assert losses["data"] / losses["normalized"] == pytest.approx(
        float((task.y_norm.std ** 2).mean()), rel=0.05)


def _lrs(steps_per_epoch=3, **train):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    tc = TrainConfig(lr=2.0, **train)
    sched = build_scheduler(opt, tc, steps_per_epoch)
    out = []
    for _ in range(tc.epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_over_the_rest_follows_the_closed_form():
    lrs = _lrs(epochs=6, warmup=2, warmup_start=0.1)  # 6 warm-up steps, cosine over 12
    for k in range(6):
        assert lrs[k] == pytest.approx(2.0 * (0.1 + 0.9 * k / 6), abs=1e-12)
    for k in range(6, 18):
        assert lrs[k] == pytest.approx(1.0 * (1 + math.cos(math.pi * (k - 6) / 12)), abs=1e-9)
    assert lrs[-1] == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 11 / 12)), abs=1e-9)
    # warm-up from 0, and no warm-up (today's schedule: cosine over all 18 steps)
    assert _lrs(epochs=6, warmup=1)[:3] == pytest.approx([0.0, 2 / 3, 4 / 3], abs=1e-12)
    assert _lrs(epochs=6) == pytest.approx(
        [1 + math.cos(math.pi * k / 18) for k in range(18)], abs=1e-9)
    # a step schedule counts its step_size from the end of the warm-up
    assert _lrs(epochs=4, warmup=1, scheduler="step", step_size=1, gamma=0.5) == pytest.approx(
        [0.0, 2 / 3, 4 / 3, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5], abs=1e-12)


def test_cosine_t_max_and_warm_restarts_follow_the_closed_form():
    lrs = _lrs(epochs=6, t_max=2)  # period 6 steps, then rising again as torch's cosine does
    assert lrs == pytest.approx([1 + math.cos(math.pi * k / 6) for k in range(18)], abs=1e-9)
    # warm restarts after 1 warm-up epoch: periods of 3, 6, 12 steps start at 3, 6, 12
    lrs = _lrs(epochs=8, warmup=1, restarts=True, t_max=1, t_mult=2)
    expected = []
    for j in range(24 - 3):
        start, period = (0, 3) if j < 3 else (3, 6) if j < 9 else (9, 12)
        expected.append(1 + math.cos(math.pi * (j - start) / period))
    assert lrs[3:] == pytest.approx(expected, abs=1e-9)
    assert [lrs[k] for k in (6, 12)] == pytest.approx([2.0, 2.0], abs=1e-12)


def test_resume_with_warmup_and_restarts_is_bitwise_exact(ns_data, tmp_path):
    cfg = build_config(_raw(ns_data, warmup=1, warmup_start=0.2, restarts=True, t_max=1))
    full = Trainer(cfg, tmp_path / "full", progress=False)
    full.fit()
    Trainer(cfg, tmp_path / "part", progress=False).fit(max_steps=3)  # mid-epoch 2 of 2 steps
    resumed = Trainer(cfg, tmp_path / "part", progress=False)
    resumed.fit(resume=True)
    assert resumed.step == 6 and full.opt.param_groups[0]["lr"] == \
        resumed.opt.param_groups[0]["lr"]
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_threads_option_sets_torch_threads(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(cli, "cmd_verify", lambda args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cli.main(["verify", "heat1d", "--threads", "1"])
        torch.set_num_threads(2)
        cli.main(["verify", "heat1d"])  # default: unchanged
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 2]
    for name in cli.COMPUTE_COMMANDS:  # every compute subcommand takes it
        assert cli.main([name, "--help"]) == 0
        assert "--threads N" in capsys.readouterr().out


@pytest.mark.parametrize("setting, message", [
    ("train.normalize=inputs", "train.normalize='inputs' is not allowed; choose one of "
                               "['both', 'output', 'none']"),
    ("train.loss_reduction=avg", "train.loss_reduction='avg' is not allowed; choose one of "
                                 "['mean', 'sum']"),
    ("train.warmup=3", "train.warmup=3 must be in [0, train.epochs - 1 = 2]"),
    ("train.warmup_start=1.5", "train.warmup_start=1.5 is out of range; allowed [0.0, 1.0]"),
    ("train.t_mult=0", "train.t_mult=0 is out of range; allowed [1, inf)"),
    ("train.restarts=true", "train.restarts=true needs train.t_max >= 1"),
    ("train.t_max=-1", "train.t_max=-1 is out of range; allowed [0, inf)"),
])
def test_bad_schedule_and_normalize_values_are_one_line_errors(setting, message, tmp_path,
                                                               capsys):
    with pytest.raises(SciopsError) as e:
        build_config(_raw("somewhere"), dict([setting.split("=")]))
    assert message in str(e.value)
    code = cli.main(["train", "fno-ns2d-nu1e-3", "--data", str(tmp_path), "--out",
                     str(tmp_path / "run"), "--set", "train.epochs=3", "--set", setting])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("sciops: error: ")
    assert message in err


def test_t_max_is_refused_with_a_step_schedule():
    with pytest.raises(SciopsError, match="train.t_max needs train.scheduler='cosine', not "
                                          "'step'"):
        build_config(_raw("somewhere", scheduler="step", t_max=2))
