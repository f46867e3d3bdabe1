"""The layers of docs/DESIGN.md, checked on the source (``ast``, lazy imports included), and
the model registry: plug-ins through the ``sciops.models`` entry points, tasks by kind."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sciops import models
from sciops.cli import main
from sciops.data import generate, load_recipe
from sciops.errors import SciopsError
from sciops.train.config import build_config
from sciops.train.particles import ParticleTask
from sciops.train.task import SupervisedTask
from sciops.train.trainer import default_task

SCIOPS = Path(__file__).resolve().parents[1] / "sciops"


def imports(path: Path) -> set[str]:
    """Dotted names a file imports anywhere in it: ``import a.b`` gives ``a.b``, ``from a
    import b`` gives ``a`` and ``a.b`` (``b`` may be a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def module_path(name: str) -> Path | None:
    """The file of the sciops module ``name`` (dotted), None if it is no module."""
    rel = SCIOPS.parent.joinpath(*name.split("."))
    for p in (rel.with_suffix(".py"), rel / "__init__.py"):
        if p.is_file():
            return p
    return None


def _name(node: ast.expr) -> str | None:
    node = node.func if isinstance(node, ast.Call) else node
    return getattr(node, "id", getattr(node, "attr", None))


def pde_families() -> set[str]:
    """Modules under sciops/pdes that register a PDE (a class decorated with ``register``
    or ``register_dims``); the shared bases (``base``, ``semilinear``) register none."""
    found = set()
    for path in (SCIOPS / "pdes").rglob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.ClassDef) and any(
                _name(d) in ("register", "register_dims") for d in n.decorator_list)
               for n in ast.walk(tree)):
            found.add(".".join(path.relative_to(SCIOPS.parent).with_suffix("").parts))
    return found


def test_spectral_is_pure_calculus():
    path = SCIOPS / "spectral.py"
    roots = {n.split(".")[0] for n in imports(path)}
    assert roots - set(sys.stdlib_module_names) <= {"torch", "numpy"}, roots
    assert not {n for n in imports(path) if n == "torch.nn" or n.startswith("torch.nn.")}
    classes = [n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)]
    assert classes == []
    # a fresh interpreter: importing spectral loads no other sciops module, defines no Module
    code = ("import inspect, sys, torch.nn, sciops.spectral as s; "
            "print(sorted(m for m in sys.modules if m.startswith('sciops')), "
            "[n for n, o in vars(s).items() if inspect.isclass(o) and "
            "issubclass(o, torch.nn.Module)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True).stdout
    assert out.split() == ["['sciops',", "'sciops.spectral']", "[]"]


def test_train_imports_no_pde_family():
    families = pde_families()
    assert {"sciops.pdes.ns2d", "sciops.pdes.mpm2d", "sciops.pdes.catalog.heat"} <= families
    bad = {f"{p.name}: {n}" for p in (SCIOPS / "train").glob("*.py") for n in imports(p)
           if n.startswith("sciops.pdes.") and module_path(n) is not None
           and n != "sciops.pdes.base"}
    assert not bad, f"train/ imports PDE modules beyond sciops.pdes(.base): {sorted(bad)}"


def test_pde_modules_import_no_other_family():
    """Shared pieces (random fields, sine series) live below pdes, not in a family."""
    families = pde_families()
    bad = set()
    for path in (SCIOPS / "pdes").rglob("*.py"):
        if path.name == "__init__.py":
            continue  # the package imports every built-in family to register it
        bad |= {f"{path.name}: {n}" for n in imports(path) if n in families}
    assert not bad, sorted(bad)


@pytest.mark.parametrize("lower, above", [
    ("models", ("sciops.evaluate", "sciops.train", "sciops.cli")),
    ("rom.py", ("sciops.models", "sciops.evaluate", "sciops.train", "sciops.cli")),
    ("random_fields.py", ("sciops.pdes", "sciops.models", "sciops.train")),
])
def test_lower_layers_import_nothing_above(lower, above):
    files = [SCIOPS / lower] if lower.endswith(".py") else list((SCIOPS / lower).glob("*.py"))
    bad = {f"{p.name}: {n}" for p in files for n in imports(p) if n.startswith(above)}
    assert not bad, sorted(bad)


# --- models from entry points, tasks from the declared kind --------------------------------

PLUGIN = '''
from torch import nn


class Pointwise(nn.Module):
    """A 1x1 convolution (test plug-in)."""

    kind = "grid"

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.conv(x)


class NoKind(nn.Module):
    """Declares no kind of data."""
'''


@pytest.fixture(scope="module")
def grid_data(tmp_path_factory):
    recipe = load_recipe("poisson2d-cno").with_changes(samples=8, overrides={
        "resolution": "17", "modes": "4", "samples_per_shard": "8", "batch_size": "8"})
    return generate(recipe, tmp_path_factory.mktemp("grid") / "poisson", progress=False).out


def test_model_plugin_is_listed_and_trainable_and_a_broken_one_is_skipped(
        grid_data, tmp_path, monkeypatch, capsys):
    """A package installed with ``sciops.models`` entry points (a hand-written
    ``.dist-info`` on the path, as `pip install` would leave it), found by the CLI."""
    site = tmp_path / "site"
    info = site / "toy_models-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "toy_models.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[sciops.models]\ntoy-pointwise = toy_models:Pointwise\nnokind = toy_models:NoKind\n"
        "missing = toy_models:Missing\n")
    models.available()  # the built-ins register once, into the registry kept after the test
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))
    monkeypatch.setattr(models, "_BROKEN", set())
    monkeypatch.delitem(sys.modules, "toy_models", raising=False)

    assert main(["list", "models"]) == 0
    listed = capsys.readouterr()
    assert any(line.split()[:2] == ["toy-pointwise", "A"] for line in listed.out.splitlines())
    warnings = listed.err.splitlines()
    assert sorted(w.split(" = ")[0] for w in warnings) == [
        "sciops: warning: skipped model plug-in missing",
        "sciops: warning: skipped model plug-in nokind"], warnings
    assert any("NoKind: ValueError: model 'nokind': declare the data" in w for w in warnings)
    assert models.kind("toy-pointwise") == "grid"
    assert main(["list", "models"]) == 0 and capsys.readouterr().err == ""  # warned once

    recipe = tmp_path / "toy.toml"
    recipe.write_text(f'name = "toy"\n[model]\nname = "toy-pointwise"\n[data]\ndataset = '
                      f'"{grid_data}"\ninputs = ["f"]\ntargets = ["u"]\ntrain_samples = 6\n'
                      'test_samples = 2\n[train]\nepochs = 2\nbatch_size = 3\nlr = 1e-2\n')
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--quiet"]) == 0
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["config"]["model"]["name"] == "toy-pointwise"
    assert state["model"]["conv.weight"].shape == (1, 1, 1, 1)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.fixture
def arbitrary(monkeypatch):
    """Registers models under names that say nothing of their data; returns a setter."""
    models.available()  # the built-ins register once, into the registry kept after the test
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))

    def declare(name: str, kind: str) -> str:
        cls = type("Anything", (torch.nn.Module,), {"__doc__": "x", "kind": kind,
                                                     "__init__": lambda self, **kw: None})
        models.register(name)(cls)
        return name

    return declare


def _cfg(model: str, data: Path):
    return build_config({"name": "t", "model": {"name": model},
                         "data": {"dataset": str(data), "in_steps": 2, "out_steps": 2,
                                  "inputs": ["f"], "targets": ["u"],  # unused by particles
                                  "train_samples": 1, "test_samples": 1},
                         "train": {"epochs": 1, "batch_size": 1}})


def test_the_task_follows_the_declared_kind(arbitrary, grid_data, tmp_path):
    recipe = load_recipe("mpm2d-water").with_changes(samples=2, overrides={
        "n_particles": "64", "n_grid": "16", "n_records": "8", "substeps": "2",
        "max_blocks": "1", "samples_per_shard": "2", "batch_size": "2"})
    particles = generate(recipe, tmp_path / "water", progress=False).out
    task = default_task(_cfg(arbitrary("zz-fluid-net", "particle"), particles))
    assert isinstance(task, ParticleTask)
    assert task.in_channels == 2 * 2 + 2 * 2 + 3  # mpm2d declares 3 materials
    grid = _cfg(arbitrary("zz-graph", "grid"), grid_data)
    assert isinstance(default_task(grid), SupervisedTask)
    with pytest.raises(SciopsError, match="model zz-fluid-net needs particle trajectories"):
        default_task(_cfg("zz-fluid-net", grid_data))
    with pytest.raises(SciopsError, match="model zz-solver solves one PDE instance"):
        default_task(_cfg(arbitrary("zz-solver", "point"), grid_data))
    with pytest.raises(ValueError, match="declare the data it takes as a class attribute kind"):
        arbitrary("zz-none", "pixels")
