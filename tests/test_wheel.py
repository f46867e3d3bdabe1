"""The wheel built from this tree works on its own: it holds every recipe, and installed into
a fresh environment (outside the repository, no editable install) `sciops list` shows the
recipes and a tiny generate + train runs.

The fresh environment gets torch and the other dependencies without downloads through a
``.pth`` line naming this venv's site-packages: a plain path line adds the folder to
``sys.path`` without running the ``.pth`` files inside it, so the editable-install finder of
``sciops`` stays off and ``import sciops`` finds the wheel's copy (checked).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(str(p.relative_to(REPO)) for p in (REPO / "sciops" / "recipes").glob("*/*.toml"))


def run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "SCIOPS_RECIPES", "SCIOPS_DATA", "VIRTUAL_ENV")}
    proc = subprocess.run(args, cwd=cwd, env={**env, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (an in-tree build would leave build/ and
    *.egg-info in the shared working tree)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO / "sciops", src / "sciops",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--disable-pip-version-check", "-w", str(tmp / "dist"), str(src)], cwd=tmp)
    (found,) = (tmp / "dist").glob("sciops-*.whl")
    return found


def test_wheel_holds_every_recipe(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert len(RECIPES) >= 30 and sorted(n for n in names if n.endswith(".toml")) == RECIPES
    assert "sciops/cli.py" in names and not any(n.startswith("tests/") for n in names)


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_environment_lists_generates_and_trains(wheel, tmp_path):
    """Measured ~60 s on 2 loaded cores (venv with pip ~15 s, one epoch ~10 s)."""
    env = tmp_path / "env"
    run([sys.executable, "-m", "venv", str(env)], cwd=tmp_path)
    python = env / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                     "['purelib'])"], cwd=tmp_path).stdout.strip())
    (site / "zz_sciops_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--disable-pip-version-check", str(wheel)], cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    where = run([str(python), "-c", "import sciops; print(sciops.__file__)"], cwd=work)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout

    sciops = str(env / "bin" / "sciops")
    listed = run([sciops, "list", "datasets"], cwd=work).stdout
    recipes = {Path(r).stem for r in RECIPES if "/datasets/" in r}
    assert {line.split()[0] for line in listed.splitlines()[1:]
            if not line.startswith("   ")} == recipes
    assert "deeponet-antiderivative" in run([sciops, "list", "solvers"], cwd=work).stdout

    run([sciops, "generate", "antiderivative1d", "--out", "data/anti", "--samples", "24",
         "--set", "samples_per_shard=12", "--set", "batch_size=12", "--quiet"], cwd=work)
    assert len(list((work / "data" / "anti").glob("shard-*.nc"))) == 2
    out = run([sciops, "train", "deeponet-antiderivative", "--out", "run", "--quiet",
               "--set", "data.dataset=data/anti", "--set", "data.train_samples=16",
               "--set", "data.test_samples=8", "--set", "train.epochs=1",
               "--set", "train.batch_size=8", "--set", "train.eval_every=1",
               "--set", "model.latent=8", "--set", "model.branch_layers=[16]",
               "--set", "model.trunk_layers=[16]"], cwd=work).stdout
    assert "test rel. L2" in out, out
    assert (work / "run" / "last.pt").is_file() and (work / "run" / "metrics.jsonl").is_file()
