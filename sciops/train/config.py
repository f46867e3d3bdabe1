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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sciops._toml import tomllib
from sciops.data.recipes import find_recipe_file, known_recipes
from sciops.errors import SciopsError
from sciops.params import Params, param
from sciops.train.losses import LOSSES

POSITIVE = (1, None)
"""Range of a count that must be positive."""
NONNEGATIVE = (0, None)
"""Range of a count or amount that may be zero."""


@dataclass(frozen=True)
class DataConfig(Params):
    """``[data]``: the dataset, its variables, windows and splits."""

    dataset: str = param("", "an existing dataset path as given, else a name under the data "
                         "root (``$SCIOPS_DATA``, default ``./data``), e.g. the dataset recipe "
                         "name ``ns2d-fno-nu1e-3``")
    inputs: list[str] = param(["vorticity"], "input variables; time-dependent ones contribute "
                              "``in_steps`` channels each")
    targets: list[str] = param(["vorticity"], "target variables; time-dependent ones "
                               "contribute ``out_steps`` channels each")
    in_steps: int = param(10, "input records per time-dependent input", range=POSITIVE)
    out_steps: int = param(10, "target records per time-dependent target", range=POSITIVE)
    windows: str = param("first", "'first': one window per sample starting at t=0; "
                         "'sliding': every start time", choices=("first", "sliding"))
    window_stride: int = param(1, "records between sliding windows' starts", range=POSITIVE)
    train_samples: int = param(1000, "the first ``train_samples`` samples train; the next "
                               "``test_samples`` evaluate", range=NONNEGATIVE)
    test_samples: int = param(200, "size of the test split of ``dataset``; unused when "
                              "``test`` names separate test sets", range=NONNEGATIVE)
    test: dict[str, str] = param({}, "separate test datasets by name (paths or names under the "
                                 "data root), each scored whole at every evaluation and logged "
                                 "as ``<name>_rel_l2``; the first one picks ``best.pt``, e.g. "
                                 "``test = {test_16 = \"darcy_test_16.pt\", test_32 = "
                                 "\"darcy_test_32.pt\"}`` (a string is one set named "
                                 "``test``). Empty: the ``test_samples`` after the training "
                                 "samples of ``dataset``")
    variables: dict[str, str] = param({}, "names used in ``inputs``/``targets`` -> the "
                                      "variable in the files, e.g. ``{a = \"x\", u = \"y\"}`` "
                                      "for a neuraloperator ``.pt`` (whose ``x``/``y`` sciops "
                                      "also calls ``input``/``output``); names not listed are "
                                      "read as they are")

    def validate(self) -> None:
        for name in ("inputs", "targets"):
            value = getattr(self, name)
            if not value or not all(v.strip() for v in value):
                raise ValueError(f"{name}={value!r}: expected a non-empty list of variable "
                                 f"names")
        for name in ("test", "variables"):
            value = getattr(self, name)
            if not all(k.isidentifier() and v.strip() for k, v in value.items()):
                raise ValueError(f"{name}={value!r}: expected a table of name = \"text\" with "
                                 f"names of letters, digits and _")


@dataclass(frozen=True)
class TrainConfig(Params):
    """``[train]``: optimizer, schedule, loss, normalization and run control."""

    epochs: int = param(100, "passes over the training split", range=POSITIVE)
    batch_size: int = param(16, "global batch size (split evenly over DDP ranks)", range=POSITIVE)
    lr: float = param(1e-3, "AdamW learning rate", range=(0.0, None), open_low=True)
    weight_decay: float = param(1e-4, "AdamW weight decay", range=NONNEGATIVE)
    scheduler: str = param("cosine", "'cosine' (to 0 over ``t_max`` epochs, default the whole "
                           "run after the warm-up), 'step' (x gamma every step_size epochs) or "
                           "'none'. Every schedule advances once per optimizer step (epochs "
                           "count ``steps_per_epoch`` steps), not once per epoch as "
                           "neuraloperator's", choices=("cosine", "step", "none"))
    step_size: int = param(100, "epochs between the 'step' schedule's decays", range=POSITIVE)
    gamma: float = param(0.5, "factor of each 'step' decay", range=NONNEGATIVE)
    t_max: int = param(0, "cosine period in epochs (torch's ``CosineAnnealingLR`` ``T_max``; "
                       "past it the lr rises again unless ``restarts``); 0: the whole run "
                       "after the warm-up, decaying to 0 at its end", range=NONNEGATIVE)
    warmup: int = param(0, "linear warm-up epochs before the schedule (0 to ``epochs - 1``); "
                        "the schedule starts after them (a 'step' schedule counts its "
                        "step_size from there)", range=NONNEGATIVE)
    warmup_start: float = param(0.0, "the warm-up starts at ``lr * warmup_start`` (0: from 0) "
                                "and ends at ``lr``", range=(0.0, 1.0))
    restarts: bool = param(False, "cosine with warm restarts (``CosineAnnealingWarmRestarts``): "
                           "back to ``lr`` after ``t_max`` epochs, then after each period "
                           "``t_mult`` times longer; needs t_max >= 1")
    t_mult: int = param(1, "growth factor of the restart period (1: equal periods)",
                        range=POSITIVE)
    grad_clip: float = param(0.0, "max gradient 2-norm; 0 disables clipping", range=NONNEGATIVE)
    amp: str = param("none", "'none' or 'bf16' (autocast; FFTs stay in float32)",
                     choices=("none", "bf16"))
    loss: str = param("rel_l2", "'rel_l2', 'rel_h1', 'rel_h1_fd', 'rel_hm1', 'h1_neuralop' "
                      "(neuraloperator's ``H1Loss``: periodic central differences, one "
                      "relative error per sample and channel) or 'mse' (see "
                      "sciops.train.losses)", choices=LOSSES)
    loss_reduction: str = param("mean", "'mean' over the batch (sciops; the loss scale does "
                                "not depend on the batch size) or 'sum' (neuraloperator's "
                                "default: the gradient, hence the step, grows with the batch)",
                                choices=("mean", "sum"))
    loss_units: str = param("data", "where the loss compares: 'data' (the prediction decoded "
                            "to data units, sciops) or 'normalized' (the model's raw output "
                            "against standardized targets, neuraloperator's convention; equal "
                            "to 'data' for relative losses unless targets are standardized)",
                            choices=("data", "normalized"))
    normalize: str = param("both", "grid data standardized per channel with training-set "
                           "statistics: 'both' inputs and targets, 'output' targets only "
                           "(neuraloperator's Darcy setting) or 'none'. Statistics not fitted "
                           "stay identity (mean 0, std 1) in the checkpoint, so "
                           "predict/evaluate honour it", choices=("both", "output", "none"))
    seed: int = param(0, "seed of the weights, the shuffling and dropout",
                      range=(0, 2**63 - 1))
    checkpoint_every: int = param(0, "also write last.pt every this many steps (0: at epoch "
                                  "ends only)", range=NONNEGATIVE)
    max_minutes: float = param(0.0, "stop after this wall-clock budget (0: no limit); the run "
                               "stays resumable", range=NONNEGATIVE)
    eval_every: int = param(1, "evaluate on the test split every this many epochs",
                            range=POSITIVE)

    def validate(self) -> None:
        """Warm-up and cosine settings that torch would refuse or that would never take
        effect."""
        if self.warmup >= self.epochs:
            raise ValueError(f"warmup={self.warmup} must be in [0, train.epochs - 1 = "
                             f"{self.epochs - 1}] (warm-up epochs, then the schedule)")
        if self.scheduler != "cosine" and (self.restarts or self.t_max):
            raise ValueError(f"{'restarts' if self.restarts else 't_max'} needs "
                             f"train.scheduler='cosine', not {self.scheduler!r}")
        if self.restarts and self.t_max < 1:
            raise ValueError(f"restarts=true needs train.t_max >= 1 (the first period in epochs), "
                             f"got {self.t_max}")


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
    data = raw.get("data", {})
    if isinstance(data, dict) and isinstance(data.get("test"), str) \
            and not data["test"].lstrip().startswith("{"):
        data = {**data, "test": {"test": data["test"]}}  # one test set named "test"
    cfg = RunConfig(name=raw.get("name", "run"), description=raw.get("description", ""),
                    model=dict(raw["model"]), data=_table(DataConfig, data, "data"),
                    train=_table(TrainConfig, raw.get("train", {}), "train"),
                    physics=(None if raw.get("physics") is None
                             else _table(PinoConfig, raw["physics"], "physics")))
    if not cfg.data.dataset:
        raise SciopsError("training recipe: data.dataset is required (a path or recipe name)")
    return cfg


def _table(cls: type[Params], table: Any, section: str) -> Any:
    """The recipe table ``[section]`` as ``cls`` (a :class:`~sciops.params.Params`);
    SciopsError naming ``section.key`` and what is allowed."""
    if not isinstance(table, dict):
        raise SciopsError(f"[{section}]: expected a table of key = value, got {table!r}")
    try:
        return cls.from_mapping(table)
    except ValueError as e:
        msg = str(e)
        raise SciopsError(f"[{section}]: {msg}" if msg.startswith("unknown")
                          else f"{section}.{msg}") from None


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
