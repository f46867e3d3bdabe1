"""Training recipes (``sciops/recipes/solvers/NAME.toml``): ``[model]``, ``[data]``, ``[train]``
and, for a PINO run, ``[physics]`` (:class:`PinoConfig`).

Every key has a default here (documented once, equal to the code); ``--set table.key=value``
overrides any of them, e.g. ``--set train.lr=3e-4 --set model.hidden_channels=64``; list
values are JSON (``[8, 8]``) or comma lists (``8,8``). ``[model]`` is passed to
``sciops.models.build`` as keyword arguments; ``model.name`` (``sciops train --model``) set to
another model swaps in that model's defaults (:func:`model_defaults`).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sciops._toml import tomllib
from sciops.data.recipes import find_recipe_file, known_recipes
from sciops.errors import SciopsError
from sciops.params import Params, param


@dataclass
class DataConfig:
    dataset: str = ""
    """An existing dataset path as given, else a name under the data root (``$SCIOPS_DATA``,
    default ``./data``), e.g. the dataset recipe name ``ns2d-fno-nu1e-3``."""
    inputs: list[str] = field(default_factory=lambda: ["vorticity"])
    """Input variables; time-dependent ones contribute ``in_steps`` channels each."""
    targets: list[str] = field(default_factory=lambda: ["vorticity"])
    """Target variables; time-dependent ones contribute ``out_steps`` channels each."""
    in_steps: int = 10
    out_steps: int = 10
    windows: str = "first"
    """'first': one window per sample starting at t=0; 'sliding': every start time."""
    window_stride: int = 1
    train_samples: int = 1000
    """The first ``train_samples`` samples train; the next ``test_samples`` evaluate."""
    test_samples: int = 200
    """Size of the test split of ``dataset``; unused when ``test`` names separate test sets."""
    test: dict[str, str] = field(default_factory=dict)
    """Separate test datasets by name (paths or names under the data root), each scored whole
    at every evaluation and logged as ``<name>_rel_l2``; the first one picks ``best.pt``, e.g.
    ``test = {test_16 = "darcy_test_16.pt", test_32 = "darcy_test_32.pt"}`` (a string is one
    set named ``test``). Empty: the ``test_samples`` after the training samples of ``dataset``."""
    variables: dict[str, str] = field(default_factory=dict)
    """Names used in ``inputs``/``targets`` -> the variable in the files, e.g. ``{a = "x", u =
    "y"}`` for a neuraloperator ``.pt`` (whose ``x``/``y`` sciops also calls ``input``/
    ``output``); names not listed are read as they are."""


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 16
    """Global batch size (split evenly over DDP ranks)."""
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    """'cosine' (to 0 over ``t_max`` epochs, default the whole run after the warm-up), 'step'
    (x gamma every step_size epochs) or 'none'. Every schedule advances once per optimizer
    step (epochs count ``steps_per_epoch`` steps), not once per epoch as neuraloperator's."""
    step_size: int = 100
    gamma: float = 0.5
    t_max: int = 0
    """Cosine period in epochs (torch's ``CosineAnnealingLR`` ``T_max``; past it the lr rises
    again unless ``restarts``); 0: the whole run after the warm-up, decaying to 0 at its end."""
    warmup: int = 0
    """Linear warm-up epochs before the schedule (0 to ``epochs - 1``); the schedule starts
    after them (a 'step' schedule counts its step_size from there)."""
    warmup_start: float = 0.0
    """The warm-up starts at ``lr * warmup_start`` (0 to 1; 0: from 0) and ends at ``lr``."""
    restarts: bool = False
    """Cosine with warm restarts (``CosineAnnealingWarmRestarts``): back to ``lr`` after
    ``t_max`` epochs, then after each period ``t_mult`` times longer; needs t_max >= 1."""
    t_mult: int = 1
    """Growth factor of the restart period (an integer >= 1; 1: equal periods)."""
    grad_clip: float = 0.0
    """Max gradient 2-norm; 0 disables clipping."""
    amp: str = "none"
    """'none' or 'bf16' (autocast; FFTs stay in float32)."""
    loss: str = "rel_l2"
    """'rel_l2', 'rel_h1', 'rel_h1_fd', 'rel_hm1', 'h1_neuralop' (neuraloperator's ``H1Loss``:
    periodic central differences, one relative error per sample and channel) or 'mse' (see
    sciops.train.losses)."""
    loss_reduction: str = "mean"
    """'mean' over the batch (sciops; the loss scale does not depend on the batch size) or
    'sum' (neuraloperator's default: the gradient, hence the step, grows with the batch)."""
    loss_units: str = "data"
    """Where the loss compares: 'data' (the prediction decoded to data units, sciops) or
    'normalized' (the model's raw output against standardized targets, neuraloperator's
    convention; equal to 'data' for relative losses unless targets are standardized)."""
    normalize: str = "both"
    """Grid data standardized per channel with training-set statistics: 'both' inputs and
    targets, 'output' targets only (neuraloperator's Darcy setting) or 'none'. Statistics not
    fitted stay identity (mean 0, std 1) in the checkpoint, so predict/evaluate honour it."""
    seed: int = 0
    checkpoint_every: int = 0
    """Also write last.pt every this many steps (0: at epoch ends only)."""
    max_minutes: float = 0.0
    """Stop after this wall-clock budget (0: no limit); the run stays resumable."""
    eval_every: int = 1
    """Evaluate on the test split every this many epochs."""


@dataclass(frozen=True)
class PinoConfig(Params):
    """``[physics]``: train with the PDE's own grid residual (:mod:`sciops.train.pino`); the PDE
    and its parameters are those of the dataset's manifest."""

    weight: float = param(0.1, "w in loss = data loss + w * physics loss (the mean square of "
                          "the PDE residual of the predicted records, relative to that of "
                          "persistence)", range=(0.0, None))
    unlabeled: int = param(0, "samples after the test split whose inputs (never their "
                           "targets) also enter the physics loss, the way PINO adds "
                           "instances without solutions", range=(0, None))


@dataclass
class RunConfig:
    name: str = "run"
    description: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    physics: PinoConfig | None = None
    """``[physics]``: None trains on data only."""

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


_CHOICES = {("train", "scheduler"): ("cosine", "step", "none"),
            ("train", "amp"): ("none", "bf16"),
            ("train", "loss"): ("rel_l2", "rel_h1", "rel_h1_fd", "rel_hm1", "h1_neuralop",
                                "mse"),
            ("train", "loss_reduction"): ("mean", "sum"),
            ("train", "loss_units"): ("data", "normalized"),
            ("train", "normalize"): ("both", "output", "none"),
            ("data", "windows"): ("first", "sliding")}


def _coerce(where: str, value: Any, default: Any) -> Any:
    if where == "data.test" and isinstance(value, str) and not value.lstrip().startswith("{"):
        value = {"test": value}
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # JSONDecodeError; also >4300 digits, deep nesting
            if isinstance(default, list):
                value = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
            else:
                raise SciopsError(f"{where}={value!r}: expected {type(default).__name__}") from None
    if isinstance(default, bool) != isinstance(value, bool):
        raise SciopsError(f"{where}={value!r}: expected {type(default).__name__}")
    if isinstance(default, float) and isinstance(value, int):
        value = float(value)
    if not isinstance(value, type(default)):
        raise SciopsError(f"{where}={value!r}: expected {type(default).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SciopsError(f"{where}={value!r}: must be a finite number")
    if isinstance(default, list):
        if not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise SciopsError(f"{where}={value!r}: expected a non-empty list of variable names")
    if isinstance(default, dict):
        if not all(isinstance(k, str) and k.isidentifier() and isinstance(v, str) and v.strip()
                   for k, v in value.items()):
            raise SciopsError(f"{where}={value!r}: expected a table of name = \"text\" with "
                              f"names of letters, digits and _")
    return value


def _fill(cls: type, table: Any, section: str) -> Any:
    if not isinstance(table, dict):
        raise SciopsError(f"[{section}]: expected a table of key = value, got {table!r}")
    obj = cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise SciopsError(f"[{section}]: unknown key(s) {unknown}; allowed: {sorted(known)}")
    for k, v in table.items():
        v = _coerce(f"{section}.{k}", v, getattr(obj, k))
        choices = _CHOICES.get((section, k))
        if choices and v not in choices:
            raise SciopsError(f"{section}.{k}={v!r} is not allowed; choose one of {list(choices)}")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            raise SciopsError(f"{section}.{k}={v!r} must be >= 0")
        setattr(obj, k, v)
    return obj


def _model_value(text: str) -> Any:
    """A ``--set model.KEY=TEXT`` value: JSON (``8``, ``[8, 8]``, ``"tucker"``), else a comma
    list of such scalars (``8,8`` is ``[8, 8]``, as in TOML), else the text itself."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError; also >4300 digits, deep nesting
        pass
    if "," in text:
        return [_model_value(p.strip()) for p in text.strip("[]").split(",") if p.strip()]
    return text


def build_config(raw: dict[str, Any], overrides: dict[str, str] | None = None) -> RunConfig:
    """Validate a recipe dict plus ``table.key=value`` overrides into a :class:`RunConfig`.

    ``model.name`` set to another model replaces the whole ``[model]`` table by that model's
    :func:`model_defaults` (other ``model.*`` overrides then apply on top), so keys of one
    family never reach another."""
    raw = copy.deepcopy(raw)
    overrides = dict(overrides or {})
    if "model.name" in overrides:
        name = _model_value(overrides.pop("model.name"))
        table = raw.get("model")
        if not isinstance(table, dict) or table.get("name") != name:
            data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
            raw["model"] = model_defaults(name, overrides.get("data.dataset",
                                                              data.get("dataset", "")))
    for key, value in overrides.items():
        if "." not in key:
            raise SciopsError(f"--set {key!r}: use table.key=value with table model, data or "
                              f"train")
        section, name = key.split(".", 1)
        if section not in ("model", "data", "train", "physics"):
            raise SciopsError(f"--set {key!r}: unknown table {section!r}; use model, data, "
                              f"train or physics")
        if not name:
            raise SciopsError(f"--set {key!r}: missing key after {section + '.'!r}")
        if section == "model":
            value = _model_value(value)
        if not isinstance(raw.setdefault(section, {}), dict):
            raise SciopsError(f"[{section}]: expected a table of key = value, "
                              f"got {raw[section]!r}")
        raw[section][name] = value
    unknown = sorted(set(raw) - {"name", "description", "model", "data", "train", "physics"})
    if unknown:
        raise SciopsError(f"training recipe: unknown key(s) {unknown}; allowed: "
                          f"['data', 'description', 'model', 'name', 'physics', 'train']")
    for key in ("name", "description"):
        if key in raw and not isinstance(raw[key], str):
            raise SciopsError(f"training recipe: {key}={raw[key]!r}: expected a string")
    if not isinstance(raw.get("model", {}), dict):
        raise SciopsError(f"[model]: expected a table of key = value, got {raw['model']!r}")
    if "name" not in raw.get("model", {}):
        raise SciopsError("training recipe: [model] needs a `name` (see `sciops list`)")
    _check_model(raw["model"])
    cfg = RunConfig(name=raw.get("name", "run"), description=raw.get("description", ""),
                    model=dict(raw["model"]), data=_fill(DataConfig, raw.get("data", {}), "data"),
                    train=_fill(TrainConfig, raw.get("train", {}), "train"),
                    physics=_physics(raw.get("physics")))
    if not cfg.data.dataset:
        raise SciopsError("training recipe: data.dataset is required (a path or recipe name)")
    for k in ("batch_size", "epochs", "in_steps", "out_steps", "window_stride"):
        sec = cfg.train if hasattr(cfg.train, k) else cfg.data
        if getattr(sec, k) < 1:
            raise SciopsError(f"{k}={getattr(sec, k)} must be >= 1")
    _check_schedule(cfg.train)
    return cfg


def _physics(table: Any) -> PinoConfig | None:
    """The ``[physics]`` table (None: absent) as a :class:`PinoConfig`."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise SciopsError(f"[physics]: expected a table of key = value, got {table!r}")
    try:
        return PinoConfig.from_mapping(table)
    except ValueError as e:
        raise SciopsError(f"[physics]: {e}") from None


def _check_schedule(tc: TrainConfig) -> None:
    """Warm-up and cosine settings that torch would refuse or that would never take effect."""
    if tc.warmup >= tc.epochs:
        raise SciopsError(f"train.warmup={tc.warmup} must be in [0, train.epochs - 1 = "
                          f"{tc.epochs - 1}] (warm-up epochs, then the schedule)")
    if tc.warmup_start > 1:
        raise SciopsError(f"train.warmup_start={tc.warmup_start} must be in [0, 1] (fraction "
                          f"of train.lr the warm-up starts from)")
    if tc.t_mult < 1:
        raise SciopsError(f"train.t_mult={tc.t_mult} must be an integer >= 1")
    if tc.scheduler != "cosine" and (tc.restarts or tc.t_max):
        raise SciopsError(f"train.{'restarts' if tc.restarts else 't_max'} needs "
                          f"train.scheduler='cosine', not {tc.scheduler!r}")
    if tc.restarts and tc.t_max < 1:
        raise SciopsError(f"train.restarts=true needs train.t_max >= 1 (the first period in "
                          f"epochs), got {tc.t_max}")


def _check_model(model: dict[str, Any]) -> None:
    """The model name must be a registered one; other keys are checked by ``models.build``.
    Numbers anywhere in ``[model]`` must be finite."""
    from sciops import models

    name, known = model["name"], models.available()
    if not isinstance(name, str) or name not in known:
        raise SciopsError(f"model.name={name!r} is not allowed; choose one of {known}")

    def finite(where: str, v: Any) -> None:
        if isinstance(v, float) and not math.isfinite(v):
            raise SciopsError(f"{where}={v!r}: must be a finite number")
        if isinstance(v, (list, tuple)):
            for x in v:
                finite(where, x)
        if isinstance(v, dict):
            for k, x in v.items():
                finite(f"{where}.{k}", x)

    for k, v in model.items():
        finite(f"model.{k}", v)


def model_defaults(name: Any, dataset: Any = "") -> dict[str, Any]:
    """The ``[model]`` table ``--model NAME`` starts from: the one of NAME's training recipe
    on the dataset (recipe) of ``dataset``, else on data of the same kind (e.g. a 2d grid),
    else of NAME's first recipe by name; ``{"name": NAME}`` (the model's keyword defaults)
    when no training recipe uses NAME."""
    from sciops.train.task import dataset_kind

    if not isinstance(name, str):
        return {"name": name}  # refused with the list of models by _check_model
    tables = []
    for path in known_recipes("solvers").values():
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, OSError):
            continue  # a broken user recipe is reported when it is used, not here
        model, data = raw.get("model"), raw.get("data")
        if isinstance(model, dict) and model.get("name") == name:
            tables.append((data.get("dataset", "") if isinstance(data, dict) else "", model))
    if not tables:
        return {"name": name}
    here = dataset_kind(str(dataset)) if dataset else None
    if here is not None:
        for same in (0, 1):  # the same dataset recipe first, then the same kind of data
            for their, model in tables:
                if (dataset_kind(str(their)) or (None, None))[same] == here[same]:
                    return dict(model)
    return dict(tables[0][1])


RESUMABLE = ("train.max_minutes", "train.checkpoint_every")
"""Settings a resumed run may change: they do not alter the schedule, data or model."""


def _flat(cfg: RunConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    return {f"{table}.{k}": v for table in ("model", "data", "train", "physics")
            for k, v in (d[table] or {}).items()}


def resume_config(run_dir: Path, recipe: str | None,
                  overrides: dict[str, str] | None = None) -> RunConfig:
    """The config of the run in ``run_dir`` (its ``config.json``) for ``--resume``.

    ``recipe``, when given, must be the run's recipe; ``overrides`` may only repeat the stored
    values, except :data:`RESUMABLE` ones. Anything else that changes (``train.epochs``
    included: the schedule spans all epochs) is refused naming the key and both values."""
    path = Path(run_dir) / "config.json"
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict):
            raise ValueError(f"a JSON object expected, got {type(stored).__name__}")
    except (OSError, ValueError) as e:
        raise SciopsError(f"--resume: cannot read the run's {path} ({e}); pass the recipe and "
                          f"its --set options again without --resume to start a new run") from None
    stored = config_from_dict(stored)
    if recipe is not None:
        name = load_run_config(recipe).name
        if name != stored.name:
            raise SciopsError(f"--resume: {run_dir} holds a run of recipe {stored.name!r}, not "
                              f"{name!r}; resume it without the recipe (`sciops train --resume "
                              f"--out {run_dir}`) or choose another --out")
    new = build_config(stored.to_dict(), overrides)
    old_flat, new_flat = _flat(stored), _flat(new)
    for key in sorted(old_flat.keys() | new_flat.keys(), key=lambda k: (k != "model.name", k)):
        if key not in RESUMABLE and old_flat.get(key) != new_flat.get(key):
            raise SciopsError(
                f"--resume: {key}={new_flat.get(key)!r} differs from the run's stored "
                f"{key}={old_flat.get(key)!r} ({path}); resume with the stored settings (drop "
                f"that option) or train into a new --out")
    return new


def load_run_config(name_or_path: str, overrides: dict[str, str] | None = None) -> RunConfig:
    """Read the training recipe ``NAME`` (or a path) and apply overrides."""
    path = find_recipe_file(name_or_path, kind="solvers")
    try:
        raw = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as e:
        raise SciopsError(f"{path}: invalid TOML: {e}") from None
    return build_config(raw, overrides)


def config_from_dict(d: dict[str, Any]) -> RunConfig:
    """Inverse of :meth:`RunConfig.to_dict` (checkpoints store the dict)."""
    return build_config(d)
