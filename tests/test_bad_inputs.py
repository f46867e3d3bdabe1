"""Every bad input the fault trial of the issue "Nothing wrong passes silently" listed, and
its neighbours: each ends in exactly one line ``sciops: error: ...`` naming the option, exit
2, no traceback, nothing written."""

from __future__ import annotations

import pytest
from conftest import poisson_fno_recipe

from sciops import cli
from sciops.data import generate, load_recipe

SMALL = {"resolution": "16", "modes": "4", "samples_per_shard": "4", "batch_size": "4"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    data = root / "ds"
    generate(load_recipe("poisson2d-cno").with_changes(samples=8, overrides=SMALL), data,
             progress=False)
    recipe = poisson_fno_recipe(root / "r.toml", data)
    run = root / "run"
    assert cli.main(["train", str(recipe), "--out", str(run), "--quiet"]) == 0
    (root / "a-file").write_text("not a directory")
    (root / "a-dir").mkdir()
    return {"D": str(data), "R": str(run), "T": str(recipe), "ROOT": str(root)}


CASES = {
    "rom k=0": (["rom", "{D}", "--var", "u", "--k", "0", "--out", "{ROOT}/rom"], "--k"),
    "rom rank<0": (["rom", "{D}", "--var", "u", "--rank", "-1", "--out", "{ROOT}/rom"], "--rank"),
    "rom snapshots=0": (["rom", "{D}", "--var", "u", "--max-snapshots", "0", "--out",
                         "{ROOT}/rom"], "--max-snapshots"),
    "rom unknown var": (["rom", "{D}", "--var", "nope", "--out", "{ROOT}/rom"], "nope"),
    "evaluate clusters=0": (["evaluate", "{R}", "--out", "{ROOT}/ev", "--clusters", "0"],
                            "--clusters"),
    "evaluate reversed samples": (["evaluate", "{R}", "--out", "{ROOT}/ev", "--samples", "5:2"],
                                  "--samples"),
    "train out is a file": (["train", "{T}", "--out", "{ROOT}/a-file"], "a-file"),
    "train lr nan": (["train", "{T}", "--out", "{ROOT}/t1", "--set", "train.lr=nan"], "lr"),
    "train lr inf": (["train", "{T}", "--out", "{ROOT}/t2", "--set", "train.lr=Infinity"], "lr"),
    "train gamma nan": (["train", "{T}", "--out", "{ROOT}/t3", "--set", "train.gamma=nan"],
                        "gamma"),
    "train max-steps<0": (["train", "{T}", "--out", "{ROOT}/t4", "--max-steps", "-1"],
                          "--max-steps"),
    "train modes above Nyquist": (["train", "{T}", "--out", "{ROOT}/t5", "--set",
                                   "model.n_modes=64,64"], "n_modes"),
    "predict out is a dir": (["predict", "{R}", "--data", "{D}", "--out", "{ROOT}/a-dir"], "a-dir"),
    "predict out unwritable": (["predict", "{R}", "--data", "{D}", "--out",
                                "{ROOT}/a-file/pred.nc"], "pred.nc"),
    "generate seed 2**70": (["generate", "poisson2d-cno", "--out", "{ROOT}/g", "--seed",
                             str(2**70)], "seed"),
    "les3d energy 1e30 (hung)": (["generate", "les3d-hit-32", "--out", "{ROOT}/les",
                                  "--samples", "1", "--set", "energy=1e30", "--quiet"], "energy"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line(env, case, capsys):
    argv, names = CASES[case]
    argv = [a.format(**env) for a in argv]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, (case, code, err)
    assert err.count("\n") == 1 and err.startswith("sciops: error: "), err
    assert names in err, err
