"""Nothing wrong passes silently, by fuzzing: random ``--set`` pairs, random recipe TOML and
random training overrides go through ``sciops.cli.main``. Every case must exit 0 or 2, and on 2
print exactly one line ``sciops: error: ...`` (never a traceback, never an empty message).
Accepted cases must hold only finite, well-typed values.

The solving and training stages are stubbed (the parsers and validators are what is fuzzed), so
the fast part runs in seconds; ``pytest -m slow`` runs many more examples and writes the totals
to ``benchmarks/results/fuzz.json``. A SIGTERM test checks the interrupt path end to end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
import traceback
import typing
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import poisson_fno_recipe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciops import cli, pdes
from sciops.data import generate, load_recipe
from sciops.models.gp_kron import GPKronOptions
from sciops.pdes.semilinear import SemilinearPDE
from sciops.train import config as train_config
from sciops.train.physics import METHODS, PinnConfig, solve_methods

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin" / "sciops"
RESULTS = ROOT / "benchmarks" / "results" / "fuzz.json"

PDE_NAMES = pdes.available()
FIELDS = {name: [f.name for f in dataclasses.fields(pdes.get(name).Params)] for name in PDE_NAMES}
TOP_KEYS = ["name", "pde", "description", "samples", "seed", "samples_per_shard", "batch_size",
            "params"]
TRAIN_KEYS = ([f"data.{f.name}" for f in dataclasses.fields(train_config.DataConfig)]
              + [f"train.{f.name}" for f in dataclasses.fields(train_config.TrainConfig)]
              + ["model.name", "model.n_modes", "model.hidden_channels", "name", "description"])

TALLY: Counter = Counter()
"""(category, outcome) -> count; outcome is 'accepted' or 'refused'. Failures raise."""

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=int(os.environ.get("SCIOPS_FUZZ_EXAMPLES", "2500")), deadline=None,
                database=None, suppress_health_check=list(HealthCheck))

# ---------------------------------------------------------------- strategies

names = st.text(st.characters(codec="utf-8", exclude_characters="\x00="), max_size=12)
numbers = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "Infinity", "NaN", "1e400", "-1e400", "1e-400",
                     "0", "-0", "-1", "1", "2", "0.5", "1e9", "9" * 5000, "1_000", " 3 ",
                     "0x10", "true", "false", "none", "null", "", " ", "[]", "[1,2]", "(1, 2)",
                     "[1, nan]", "{}", '"x"', "٣", "١٢.٥", "∞", "ñ", "\n", "a\nb", "1,2,3"]))
values = st.one_of(numbers, st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                                    max_size=20))


DEFAULTS = {name: {f.name: f.default for f in dataclasses.fields(pdes.get(name).Params)}
            for name in PDE_NAMES}


def near(default) -> st.SearchStrategy[str]:
    """Values close to a field's default: mostly valid, some just outside its range."""
    if isinstance(default, bool):
        return st.sampled_from(["true", "false", "1", "0", "yes", "maybe"])
    if isinstance(default, (int, float)):
        return st.sampled_from([0.5, 1, 2, -1, 0, 1e6]).map(lambda m: repr(type(default)(
            default * m)) if math.isfinite(default * m) else "inf")
    if isinstance(default, tuple):
        return st.just(",".join(map(str, default)))
    return st.just(str(default))


@st.composite
def set_pairs(draw, pde: str):
    out = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 9))
        if kind < 5:  # a real field, a value near its default
            k = draw(st.sampled_from(FIELDS[pde]))
            v = draw(near(DEFAULTS[pde][k]))
        elif kind < 8:  # a real field, a hostile value
            k = draw(st.sampled_from(FIELDS[pde] + ["samples_per_shard", "batch_size"]))
            v = draw(values)
        else:  # a random key
            k, v = draw(names), draw(values)
        out += ["--set", k if kind == 9 and draw(st.booleans()) else f"{k}={v}"]
    return out


def toml_value(draw, depth: int = 0):
    leaf = st.one_of(
        st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(), st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)),
                               max_size=10),
        st.sampled_from([0, 1, -1, 2, 10, 1e-3, 0.5, "fno", "heat2d", "", "x/../y"]))
    if depth >= 2:
        return draw(leaf)
    return draw(st.one_of(leaf, st.lists(leaf, max_size=3),
                          st.dictionaries(names.filter(bool), leaf, max_size=3)))


def toml_repr(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string with \\u escapes is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_repr(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_repr(x)}" for k, x in v.items()) + "}"


@st.composite
def recipe_texts(draw):
    if draw(st.integers(0, 9)) == 0:  # raw text: mostly invalid TOML
        return draw(st.text(max_size=60))
    pde = draw(st.sampled_from(PDE_NAMES))
    data = {"name": "fz", "pde": pde, "samples": 1, "params": {}}
    for key in draw(st.lists(st.sampled_from(TOP_KEYS + ["extra"]) | names.filter(bool),
                             max_size=3)):
        data[key] = toml_value(draw)
    for key in draw(st.lists(st.sampled_from(FIELDS[pde]) | names.filter(bool), max_size=3)):
        if isinstance(data.get("params"), dict):
            data["params"][key] = toml_value(draw, 1)
    for key in draw(st.lists(st.sampled_from(["name", "pde", "params"]), max_size=1)):
        data.pop(key, None)
    lines = [f"{json.dumps(k)} = {toml_repr(v)}" for k, v in data.items()
             if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"[{json.dumps(k)}]")
            lines += [f"{json.dumps(kk)} = {toml_repr(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


@st.composite
def train_pairs(draw):
    keys = st.one_of(st.sampled_from(TRAIN_KEYS),
                     st.tuples(st.sampled_from(["model", "data", "train", "x", ""]), names)
                     .map(".".join), names)
    pairs = draw(st.lists(st.tuples(keys, values), min_size=1, max_size=4))
    return [a for k, v in pairs for a in ("--set", f"{k}={v}")]


# ---------------------------------------------------------------- harness


class _Stop(Exception):
    pass


def _finite(where: str, v) -> None:
    if isinstance(v, float):
        assert math.isfinite(v), f"{where}={v!r} accepted silently"
    elif isinstance(v, (list, tuple)):
        for x in v:
            _finite(where, x)
    elif isinstance(v, dict):
        for k, x in v.items():
            _finite(f"{where}.{k}", x)


def _check_recipe(recipe) -> None:
    hints = typing.get_type_hints(type(recipe.params))
    assert isinstance(recipe.name, str) and recipe.name.strip(), recipe.name
    assert "/" not in recipe.name and recipe.name not in (".", ".."), recipe.name
    assert isinstance(recipe.pde, str) and isinstance(recipe.description, str)
    for key in ("samples", "seed", "samples_per_shard", "batch_size"):
        assert type(getattr(recipe, key)) is int, (key, getattr(recipe, key))
    assert 0 <= recipe.seed < 2**63 and recipe.samples >= 1, recipe
    for f in dataclasses.fields(recipe.params):
        v = getattr(recipe.params, f.name)
        _finite(f.name, v)
        if isinstance(v, tuple):
            hint = hints[f.name]
            assert typing.get_origin(hint) is tuple or tuple in typing.get_args(hint), f.name


def _check_run_config(cfg) -> None:
    _finite("config", cfg.to_dict())
    assert isinstance(cfg.model.get("name"), str), cfg.model
    for v in (cfg.data.inputs, cfg.data.targets):
        assert v and all(isinstance(x, str) and x for x in v), v
    assert isinstance(cfg.data.dataset, str) and cfg.data.dataset


def _first(*args, **kw):
    return args[0]


STUBS = {"sciops.data:generate": _first, "sciops.train:Trainer": _first}
"""Stubbed calls, ``module:attribute`` -> what of the call's arguments the check sees."""


def run_cli(argv: list[str], category: str, monkeypatch, check=None, stubs=None) -> int:
    """``cli.main(argv)`` with the expensive stage stubbed (``stubs``, default
    :data:`STUBS`): the first stubbed call records what it got and stops the command.
    Asserts the exit contract."""
    import importlib

    seen = {}

    def stub(pick):
        def fake(*args, **kw):
            seen["obj"] = pick(*args, **kw)
            raise _Stop
        return fake

    for where, pick in (stubs or STUBS).items():
        module, name = where.split(":")
        monkeypatch.setattr(importlib.import_module(module), name, stub(pick))
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = cli.main(argv)
    except _Stop:
        code = 0
    except SystemExit as e:  # argparse usage errors: also exit 2, but print usage
        code = e.code
        assert code == 2, (argv, code)
        TALLY[(category, "refused")] += 1
        return 2
    except BaseException as e:
        pytest.fail(f"{repr(argv)[:600]}: {type(e).__name__} escaped main():\n"
                    + "".join(traceback.format_exception(e))[-3000:])
    text = err.getvalue()
    assert code in (0, 2), (argv, code, text)
    if code == 2:
        assert text.endswith("\n") and text.count("\n") == 1, (argv, text)
        assert text.startswith("sciops: error: ") and len(text.strip()) > 15, (argv, text)
        assert "Traceback" not in text
        TALLY[(category, "refused")] += 1
    else:
        assert "obj" in seen, argv
        if check:
            check(seen["obj"])
        TALLY[(category, "accepted")] += 1
    return code


@pytest.fixture(scope="module")
def recipe_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    (root / "datasets").mkdir()
    (root / "solvers").mkdir()
    for name in PDE_NAMES:
        (root / "datasets" / f"fz-{name}.toml").write_text(
            f'name = "fz-{name}"\npde = "{name}"\nsamples = 1\n[params]\n')
    return root


@pytest.fixture
def env(recipe_root, monkeypatch, tmp_path):
    monkeypatch.setenv("SCIOPS_RECIPES", str(recipe_root))
    return recipe_root, tmp_path


# ---------------------------------------------------------------- the properties


def _set_generate(env, monkeypatch, data):
    root, tmp = env
    pde = data.draw(st.sampled_from(PDE_NAMES))
    argv = ["generate", f"fz-{pde}", "--samples", "1", "--out", str(tmp / "o"), "--quiet",
            *data.draw(set_pairs(pde))]
    for flag in data.draw(st.lists(st.sampled_from(["--seed", "--samples"]), max_size=2)):
        argv += [flag, str(data.draw(st.integers(-2**70, 2**70) | st.integers(-2, 3)))]
    run_cli(argv, "generate --set", monkeypatch, _check_recipe)


def _recipe_toml(env, monkeypatch, data):
    root, tmp = env
    text = data.draw(recipe_texts())
    path = tmp / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    run_cli(["generate", str(path), "--out", str(tmp / "o"), "--quiet"], "recipe TOML",
            monkeypatch, _check_recipe)


def _train_set(env, monkeypatch, data):
    root, tmp = env
    argv = ["train", "fno-burgers1d", "--out", str(tmp / "run"), "--quiet",
            *data.draw(train_pairs())]
    run_cli(argv, "train --set", monkeypatch, _check_run_config)


def _train_toml(env, monkeypatch, data):
    root, tmp = env
    table = {sec: data.draw(st.dictionaries(
        st.sampled_from([k.split(".", 1)[1] for k in TRAIN_KEYS if k.startswith(sec)]) | names,
        st.integers() | st.floats() | st.booleans() | st.text(max_size=8)
        | st.lists(st.text(max_size=4) | st.integers(), max_size=2), max_size=3))
        for sec in ("model", "data", "train")}
    table["model"].setdefault("name", "fno")
    table["data"].setdefault("dataset", "burgers1d-pdebench")
    text = "\n".join(f"[{sec}]\n" + "\n".join(f"{json.dumps(k)} = {toml_repr(v)}"
                                              for k, v in t.items())
                     for sec, t in table.items()) + "\n"
    path = tmp / "solver.toml"
    path.write_text(text, encoding="utf-8")
    run_cli(["train", str(path), "--out", str(tmp / "run"), "--quiet"], "train recipe TOML",
            monkeypatch, _check_run_config)


# ---------------------------------------------------------------- solve, verify, evaluate, rom,
# predict: options of the other commands (the solving, checking, scoring and predicting
# stages are stubbed after validation)

PINN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PinnConfig) if f.name != "model"}
PINN_DEFAULTS.update({"model.width": 64, "model.depth": 3, "model.activation": "tanh",
                      "model.fourier_features": 0, "model.periodic_modes": 1,
                      "model.fourier_scales": "[1.0]", "model.dtype": "float32",
                      "model.name": "pinn", "model.lower": "[0.0]"})
GP_DEFAULTS = {f.name: f.default for f in dataclasses.fields(GPKronOptions)} | {"points": 16}
SOLVABLE = {m: [n for n in PDE_NAMES if m in solve_methods(pdes.get(n))] for m in METHODS}
VERIFIABLE = [n for n in PDE_NAMES if isinstance(pdes.get(n), SemilinearPDE)]
CHOICES = {"sampling": ["uniform", "sobol", "grid"], "bc": ["soft", "exact"],
           "scheduler": ["none", "cosine"], "kernel": ["matern", "gauss"],
           "model.activation": ["tanh", "sin", "gelu", "silu"],
           "model.dtype": ["float32", "float64"]}
small = st.integers(-1, 12).map(str)
counts = st.one_of(small, st.sampled_from(["4", "8", "1e3", "2**70", "+3", " 5", "٣"]),
                   st.integers(-2**70, 2**70).map(str), values)
count_text = st.integers(0, 3).flatmap(lambda i: small if i else counts)
"""Count options: mostly small integers, some huge or hostile."""
edges = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e400", "2.5", "true", "null", "[]",
                         "[1, NaN]", '"x"', "2**70", str(2**63), ""])


@st.composite
def option_pairs(draw, defaults: dict):
    """``--option key=value`` pairs: real keys near their defaults, hostile values, random
    keys."""
    out = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.integers(0, 9))
        k = draw(st.sampled_from(sorted(defaults)))
        if kind < 4:
            v = draw(st.sampled_from(CHOICES[k]) if k in CHOICES else near(defaults[k]))
        elif kind < 9:
            v = draw(edges if kind < 8 else values)
        else:
            k, v = draw(st.one_of(names, names.map("model.".__add__))), draw(values)
        out += ["--option", k if kind == 9 and draw(st.booleans()) else f"{k}={v}"]
    return out


def _check_pinn(cfg) -> None:
    assert isinstance(cfg, PinnConfig), cfg
    hints = typing.get_type_hints(PinnConfig)
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        _finite(f.name, v)
        if hints[f.name] in (int, float, str):
            assert type(v) is hints[f.name], (f.name, v)
    assert cfg.lr > 0 and cfg.n_interior >= 1 and cfg.adam_steps >= 0, cfg
    for key in ("width", "depth"):
        assert type(cfg.model.get(key, 1)) is int and cfg.model.get(key, 1) >= 1, cfg.model
    assert not set(cfg.model) & {"name", "lower", "upper", "periods"}, cfg.model  # set by solve


def _check_gp(opts) -> None:
    assert isinstance(opts, GPKronOptions), opts
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        _finite(f.name, v)
        assert v is None or type(v) is type(GP_DEFAULTS[f.name]), (f.name, v)
    assert opts.steps >= 0 and opts.lbfgs_steps >= 0, opts
    assert opts.n_components >= 1 and opts.lr > 0, opts
    assert opts.points is None or opts.points >= 4, opts
    assert opts.kernel in CHOICES["kernel"], opts


def _solve(env, monkeypatch, data):
    root, tmp = env
    method = data.draw(st.sampled_from(METHODS))
    pde = data.draw(st.sampled_from(SOLVABLE[method]) | st.sampled_from(PDE_NAMES))
    sets = data.draw(set_pairs(pde)) if data.draw(st.integers(0, 2)) == 0 else []
    argv = ["solve", pde, "--method", method, "--out", str(tmp / "s"), "--quiet", *sets,
            *data.draw(option_pairs(PINN_DEFAULTS if method == "pinn" else GP_DEFAULTS))]
    if data.draw(st.integers(0, 4)) == 0:
        argv += ["--seed", data.draw(count_text)]
    stubs = {"sciops.train.physics:train_pinn": lambda problem, cfg, *a, **kw: cfg,
             "sciops.train.physics:_gp_kron": lambda pde, params, sample, opts, *a: opts}
    run_cli(argv, "solve --option/--set", monkeypatch,
            _check_pinn if method == "pinn" else _check_gp, stubs)


def _verify(env, monkeypatch, data):
    pde = data.draw(st.sampled_from(VERIFIABLE) | st.sampled_from(PDE_NAMES))
    sets = data.draw(set_pairs(pde)) if data.draw(st.integers(0, 5)) else []
    argv = ["verify", pde, *sets]
    if data.draw(st.integers(0, 4)) == 0:
        argv += ["--seed", data.draw(counts)]

    def check(p):  # verify's first solve: float64 ETDRK4 at dt/16 with every --set honoured
        assert p.dtype == "float64" and p.method == "etdrk4", p
        _finite("params", p.to_dict())
        user = cli._overrides(sets[1::2])
        expected = pdes.get(pde).make_params({**pdes.get(pde).verify_case, **user})
        for k in user:
            got = getattr(p, k) * 16 if k == "dt" else getattr(p, k)
            assert got == pytest.approx(getattr(expected, k)), (k, got, getattr(expected, k))

    run_cli(argv, "verify --set", monkeypatch, check,
            {"sciops.verify:_final": lambda pde, p, inputs: p})


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A tiny dataset (8 samples of poisson2d at 16², no time) and a one-epoch FNO run on it."""
    root = tmp_path_factory.mktemp("fz-run")
    data = root / "ds"
    generate(load_recipe("poisson2d-cno").with_changes(samples=8, overrides={
        "resolution": "16", "modes": "4", "samples_per_shard": "4", "batch_size": "4"}),
        data, progress=False)
    recipe = poisson_fno_recipe(root / "r.toml", data)
    assert cli.main(["train", str(recipe), "--out", str(root / "run"), "--quiet"]) == 0
    (root / "a-file").write_text("not a directory")
    return {"data": data, "run": root / "run", "root": root, "n": 8}


span = st.one_of(st.tuples(st.integers(-1, 9), st.integers(-1, 9)).map(
    lambda t: f"{t[0]}:{t[1]}"), st.tuples(counts, counts).map(":".join), values)


def _evaluate(env, monkeypatch, data, art):
    argv = ["evaluate", str(art["run"]), "--out", str(env[1] / "ev"), "--quiet"]
    text = data.draw(span) if data.draw(st.booleans()) else None
    clusters = data.draw(count_text) if data.draw(st.booleans()) else None
    argv += ["--samples", text] * (text is not None) + ["--clusters", clusters] * (
        clusters is not None)

    def check(_):  # accepted: a range inside the 8 samples, 1 to its length clusters
        lo, hi = (int(x) for x in text.split(":")) if text is not None else (6, 8)  # test split
        assert 0 <= lo < hi <= art["n"], text
        assert clusters is None or 1 <= int(clusters) <= hi - lo, clusters

    run_cli(argv, "evaluate --samples/--clusters", monkeypatch, check,
            {"sciops.evaluate.compare:load_run": _first})


def _rom(env, monkeypatch, data, art):
    var = data.draw(st.sampled_from(["u", "f"]) if data.draw(st.integers(0, 3)) else values)
    argv = ["rom", str(art["data"]), "--var", var, "--out", str(env[1] / "rom"), "--quiet"]
    opts = {k: data.draw(count_text) for k in data.draw(st.lists(
        st.sampled_from(["--k", "--rank", "--max-snapshots"]), min_size=1, max_size=3,
        unique=True))}
    argv += [a for kv in opts.items() for a in kv]

    def check(x):  # accepted: the snapshots can hold k clusters and a rank-R basis
        k, rank = int(opts.get("--k", 8)), int(opts.get("--rank", 10))
        assert var in ("u", "f") and k >= 1 and len(x) >= 2 * k, (var, k, x.shape)
        assert 1 <= rank < min(x.shape), (rank, x.shape)  # from min(x.shape) on: exact

    run_cli(argv, "rom --var/--k/--rank/--max-snapshots", monkeypatch, check,
            {"sciops.rom:sine_dissimilarity": _first})


paths = st.one_of(
    st.sampled_from(["", ".", "..", "/", "{root}", "{root}/", "{root}/a-file",
                     "{root}/a-file/pred.nc", "{root}/a-file/x/y.nc", "{tmp}/x/", "/dev/null",
                     "/proc/nope.nc", "{tmp}/" + "n" * 255, "{tmp}/" + "n" * 300 + ".nc",
                     "{tmp}/" + "é" * 128 + ".nc", "{tmp}/ok.nc", "{tmp}/d/e/f.nc",
                     "{tmp}/-x.nc", "{tmp}/ .nc", "{tmp}/a\nb.nc"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
            max_size=40).map("{tmp}/".__add__))


def _predict(env, monkeypatch, data, art):
    out = data.draw(paths).replace("{root}", str(art["root"])).replace("{tmp}", str(env[1]))

    def check(_):  # accepted: a writable file name, not a folder
        assert out and not Path(out).is_dir() and not out.endswith("/"), out

    run_cli(["predict", str(art["run"]), "--data", str(art["data"]), "--out", out, "--quiet"],
            "predict --out", monkeypatch, check, {"sciops.train.predict:load_run": _first})


PROPERTIES = {"generate --set": _set_generate, "recipe TOML": _recipe_toml,
              "train --set": _train_set, "train recipe TOML": _train_toml,
              "solve --option/--set": _solve, "verify --set": _verify,
              "evaluate --samples/--clusters": _evaluate,
              "rom --var/--k/--rank/--max-snapshots": _rom, "predict --out": _predict}
WITH_RUN = {_evaluate, _rom, _predict}
"""Properties that need the module's tiny dataset and run (:func:`artifacts`)."""


def _explore(category: str, how: settings, env, monkeypatch, request) -> None:
    prop = PROPERTIES[category]
    extra = (request.getfixturevalue("artifacts"),) if prop in WITH_RUN else ()

    @how
    @given(data=st.data())
    def case(data):
        prop(env, monkeypatch, data, *extra)

    case()


@pytest.mark.parametrize("category", list(PROPERTIES))
def test_fuzz_fast(category, env, monkeypatch, request):
    _explore(category, FAST, env, monkeypatch, request)


@pytest.mark.slow
def test_fuzz_slow_and_record(env, monkeypatch, request, artifacts):
    """(``artifacts`` is built first: later categories' stubs would stop its training.)"""
    TALLY.clear()
    started = time.time()
    for category in PROPERTIES:
        _explore(category, SLOW, env, monkeypatch, request)
    totals = {}
    for cat in PROPERTIES:
        acc, ref = TALLY[(cat, "accepted")], TALLY[(cat, "refused")]
        totals[cat] = {"tried": acc + ref, "held": acc + ref, "accepted": acc, "refused": ref}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "test": "tests/test_fuzz_cli.py::test_fuzz_slow_and_record",
        "property": "exit 0 or 2; on 2 exactly one stderr line 'sciops: error: ...'; "
                    "accepted values finite and well typed",
        "max_examples_per_category": SLOW.max_examples,
        "categories": totals,
        "total": {"tried": sum(t["tried"] for t in totals.values()),
                  "held": sum(t["held"] for t in totals.values())},
        "seconds": round(time.time() - started, 1)}, indent=2) + "\n")


# Inputs the fuzz (or a run of its cases) showed to end in a traceback, a silent success or a
# message not naming the option; each must now be one line naming it.
FOUND = {
    "gp-kron steps not an int (ValueError traceback)":
        (["solve", "poisson2d", "--method", "gp-kron", "--option", "steps=x"], "steps"),
    "gp-kron kernel unknown (ValueError traceback)":
        (["solve", "poisson2d", "--method", "gp-kron", "--option", "kernel=rbf"], "kernel"),
    "gp-kron lr nan (ValueError traceback)":
        (["solve", "poisson2d", "--method", "gp-kron", "--option", "lr=nan"], "lr"),
    "gp-kron n_components 0 (traceback)":
        (["solve", "poisson2d", "--method", "gp-kron", "--option", "n_components=0"],
         "n_components"),
    "pinn rar_k nan (accepted)": (["solve", "heat1d", "--option", "rar_k=nan"], "rar_k"),
    "pinn lr inf (accepted)": (["solve", "heat1d", "--option", "lr=inf"], "lr"),
    "pinn model.lower (silently replaced)":
        (["solve", "heat1d", "--option", "model.lower=[5.0]"], "model.lower"),
    "pinn model.fourier_scales nan (accepted)":
        (["solve", "heat1d", "--option", "model.fourier_features=4",
          "--option", "model.fourier_scales=[NaN]"], "model.fourier_scales"),
    "pinn seed 2**64 (traceback in training)":
        (["solve", "heat1d", "--option", f"seed={2**64}"], "seed"),
    "solve --seed 2**64 (message without the option)":
        (["solve", "heat1d", "--seed", str(2**64)], "--seed"),
    "pinn n_interior 1e12 (MemoryError traceback)":
        (["solve", "heat1d", "--option", "n_interior=1000000000000"], "memory"),
    "solve heat3d at 4096^3 (allocation traceback)":
        (["solve", "heat3d", "--set", "resolution=4096"], "resolution=4096"),
    "verify method (silently ignored)": (["verify", "heat1d", "--set", "method=ifrk4"], "method"),
    "verify n_records (silently ignored)":
        (["verify", "heat1d", "--set", "n_records=3"], "n_records"),
    "verify --seed 2**64 (message without the option)":
        (["verify", "heat1d", "--seed", str(2**64)], "--seed"),
    "verify 1.6e11 steps (SolverDiverged traceback)":
        (["verify", "heat1d", "--set", "t_final=100000", "--set", "dt=1e-5"], "t_final"),
    "verify 3.2e6 steps (SolverDiverged traceback)":
        (["verify", "heat1d", "--set", "t_final=2", "--set", "dt=1e-5"], "dt="),
    "evaluate 175 clusters of 2 samples (silently 2)":
        (["evaluate", "{run}", "--out", "{tmp}/ev", "--clusters", "175"], "--clusters"),
    "rom rank 8 of 8 snapshots (round-off gains reported)":
        (["rom", "{data}", "--var", "u", "--k", "1", "--rank", "8", "--out", "{tmp}/rom"],
         "--rank"),
    "predict --out name of 300 bytes (OSError traceback)":
        (["predict", "{run}", "--data", "{data}", "--out", "{tmp}/" + "n" * 300 + ".nc"],
         "--out"),
    "predict --out new/ (wrote a file named new)":
        (["predict", "{run}", "--data", "{data}", "--out", "{tmp}/new/"], "--out"),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_found_inputs_are_refused(case, artifacts, tmp_path, capsys):
    argv, named = FOUND[case]
    fill = {"run": artifacts["run"], "data": artifacts["data"], "tmp": tmp_path}
    argv = argv + ["--out", "{tmp}/s"] * (argv[0] == "solve")
    code = cli.main([a.format(**fill) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, (case, code, err)
    assert err.count("\n") == 1 and err.startswith("sciops: error: "), err
    assert named in err, err
    assert not list(tmp_path.iterdir()), "a refused command wrote files"


# ---------------------------------------------------------------- real entry point


@pytest.mark.parametrize("args", [
    ["generate", "fz-heat2d", "--set", "nu=nan"],
    ["generate", "fz-heat2d", "--set", "no_such_key=1"],
    ["train", "fno-burgers1d", "--out", "RUN", "--set", "train.lr=NaN"],
])
def test_entry_point_one_line(args, env):
    root, tmp = env
    args = [str(tmp / "run") if a == "RUN" else a for a in args]
    p = subprocess.run([str(BIN), *args, "--quiet"], capture_output=True, text=True,
                       env={**os.environ, "SCIOPS_RECIPES": str(root), "OMP_NUM_THREADS": "1",
                            "SCIOPS_DATA": str(tmp)}, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("sciops: error: "), p.stderr


@pytest.mark.parametrize("message,line", [("", "sciops: error: unspecified error\n"),
                                          ("bad\nvalue\r\n", "sciops: error: bad value\n")])
def test_error_message_is_one_nonempty_line(message, line, monkeypatch):
    from sciops.errors import SciopsError

    def fail(args):
        raise SciopsError(message)

    monkeypatch.setattr(cli, "cmd_list", fail)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli.main(["list"]) == 2
    assert err.getvalue() == line


# ---------------------------------------------------------------- SIGTERM

SLOW_RECIPE = """name = "slowburgers"
pde = "burgers1d"
samples = 8
seed = 3
samples_per_shard = 2
batch_size = 2
[params]
nu = 0.01
resolution = 128
t_final = 1.0
n_records = 10
dt = 1e-3
"""


def _arrays(root: Path) -> dict[str, np.ndarray]:
    import xarray as xr
    out = {}
    for f in sorted(root.glob("shard-*.nc")):
        with xr.open_dataset(f, engine="h5netcdf") as ds:
            for k, v in ds.data_vars.items():
                out[f"{f.name}/{k}"] = v.values
    return out


def test_sigterm_is_an_interrupt_and_resumes(tmp_path):
    rec = tmp_path / "rec" / "datasets"
    rec.mkdir(parents=True)
    (rec / "slowburgers.toml").write_text(SLOW_RECIPE)
    env = {**os.environ, "SCIOPS_RECIPES": str(tmp_path / "rec"), "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN), "generate", "slowburgers", "--quiet", "--device", "cpu"]
    ref = subprocess.run([*cmd, "--out", str(tmp_path / "ref")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "cut"
    p = subprocess.Popen([*cmd, "--out", str(out)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "shard-00000.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, stderr)
    assert stderr == "sciops: interrupted; rerun the same command to resume\n", stderr
    assert "dataset complete" not in stdout
    assert len(list(out.glob("shard-*.nc"))) < 4, "interrupted too late to test resume"

    again = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert "dataset complete" in again.stdout
    a, b = _arrays(tmp_path / "ref"), _arrays(out)
    assert a.keys() == b.keys() and a
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_closed_pipe_is_quiet():
    """`sciops list | head -1`: the reader leaves early; no BrokenPipeError traceback, exit 0."""
    p = subprocess.Popen([str(BIN), "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.stdout.readline()
    p.stdout.close()
    stderr = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0, stderr
    assert stderr == "", stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
