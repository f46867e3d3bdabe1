"""Up-front memory check of training: the activation bytes are measured exactly, the check
refuses a run that cannot fit with one line, and it leaves training unchanged."""

from __future__ import annotations

import json

import torch
from torch import nn

from sciops import cli
from sciops.data import generate, load_recipe
from sciops.train.memory import saved_bytes


def test_saved_bytes_is_what_autograd_keeps():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(100, 30), nn.GELU(), nn.Linear(30, 5))
    x = torch.randn(8, 100)
    # addmm keeps the input of each layer (8x100, 8x30 floats) and, where the input needs a
    # gradient, the weight (30x5); GELU keeps its input (8x30); square keeps its input (8x5)
    expected = 4 * (8 * 100 + 8 * 30 + 30 * 5 + 8 * 30 + 8 * 5)
    assert saved_bytes(lambda m, x: m(x).square().sum(), (x,), net) == expected
    # measured in eval mode with the RNG restored: the model's mode and the RNG are unchanged
    net.train()
    state = torch.random.get_rng_state()
    saved_bytes(lambda m, x: nn.functional.dropout(m(x), 0.5).sum(), (x,), net)
    assert net.training and torch.equal(torch.random.get_rng_state(), state)


def test_training_that_cannot_fit_is_refused_up_front(tmp_path, capsys):
    data = generate(load_recipe("poisson2d-cno").with_changes(samples=8, overrides={
        "resolution": "32", "modes": "4", "samples_per_shard": "8", "batch_size": "8"}),
        tmp_path / "ds", progress=False).out
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'name = "t"\n[model]\nname = "fno"\nn_modes = [8, 8]\nhidden_channels = 16\n'
        f'n_layers = 2\n[data]\ndataset = {json.dumps(str(data))}\ninputs = ["f"]\n'
        'targets = ["u"]\ntrain_samples = 6\ntest_samples = 2\n'
        '[train]\nepochs = 1\nbatch_size = 2\n')
    argv = ["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]
    assert cli.main([*argv, "--max-memory", "1M"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sciops: error: training: 2 pairs x ")
    assert "--max-memory is 1.0 MB" in err and "train.batch_size" in err
    assert not (tmp_path / "run" / "last.pt").exists()
    assert cli.main([*argv, "--max-memory", "1G"]) == 0
