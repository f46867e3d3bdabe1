"""Training recipes (``sciops/recipes/solvers/NAME.toml``): ``[model]``, ``[data]``, ``[train]``.

Every key has a default here (documented once, equal to the code); ``--set table.key=value``
overrides any of them, e.g. ``--set train.lr=3e-4 --set model.hidden_channels=64``.
``[model]`` is passed to ``sciops.models.build`` as keyword arguments.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sciops._toml import tomllib
from sciops.data.recipes import find_recipe_file
from sciops.errors import SciopsError


@dataclass
class DataConfig:
    dataset: str = ""
    """Dataset directory, or a recipe name resolved as ``$SCIOPS_DATA/<name>``."""
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


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 16
    """Global batch size (split evenly over DDP ranks)."""
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    """'cosine' (to 0 over all steps), 'step' (x gamma every step_size epochs) or 'none'."""
    step_size: int = 100
    gamma: float = 0.5
    grad_clip: float = 0.0
    """Max gradient 2-norm; 0 disables clipping."""
    amp: str = "none"
    """'none' or 'bf16' (autocast; FFTs stay in float32)."""
    loss: str = "rel_l2"
    """'rel_l2', 'rel_h1', 'rel_h1_fd', 'rel_hm1' or 'mse' (see sciops.train.losses)."""
    seed: int = 0
    checkpoint_every: int = 0
    """Also write last.pt every this many steps (0: at epoch ends only)."""
    max_minutes: float = 0.0
    """Stop after this wall-clock budget (0: no limit); the run stays resumable."""
    eval_every: int = 1
    """Evaluate on the test split every this many epochs."""


@dataclass
class RunConfig:
    name: str = "run"
    description: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


_CHOICES = {("train", "scheduler"): ("cosine", "step", "none"),
            ("train", "amp"): ("none", "bf16"),
            ("train", "loss"): ("rel_l2", "rel_h1", "rel_h1_fd", "rel_hm1", "mse"),
            ("data", "windows"): ("first", "sliding")}


def _coerce(where: str, value: Any, default: Any) -> Any:
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


def build_config(raw: dict[str, Any], overrides: dict[str, str] | None = None) -> RunConfig:
    """Validate a recipe dict plus ``table.key=value`` overrides into a :class:`RunConfig`."""
    raw = copy.deepcopy(raw)
    for key, value in (overrides or {}).items():
        if "." not in key:
            raise SciopsError(f"--set {key!r}: use table.key=value with table model, data or "
                              f"train")
        section, name = key.split(".", 1)
        if section not in ("model", "data", "train"):
            raise SciopsError(f"--set {key!r}: unknown table {section!r}; use model, data or "
                              f"train")
        if not name:
            raise SciopsError(f"--set {key!r}: missing key after {section + '.'!r}")
        if section == "model":
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):  # JSONDecodeError; also >4300 digits, deep nesting
                pass
        if not isinstance(raw.setdefault(section, {}), dict):
            raise SciopsError(f"[{section}]: expected a table of key = value, "
                              f"got {raw[section]!r}")
        raw[section][name] = value
    unknown = sorted(set(raw) - {"name", "description", "model", "data", "train"})
    if unknown:
        raise SciopsError(f"training recipe: unknown key(s) {unknown}; allowed: "
                          f"['data', 'description', 'model', 'name', 'train']")
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
                    train=_fill(TrainConfig, raw.get("train", {}), "train"))
    if not cfg.data.dataset:
        raise SciopsError("training recipe: data.dataset is required (a path or recipe name)")
    for k in ("batch_size", "epochs", "in_steps", "out_steps", "window_stride"):
        sec = cfg.train if hasattr(cfg.train, k) else cfg.data
        if getattr(sec, k) < 1:
            raise SciopsError(f"{k}={getattr(sec, k)} must be >= 1")
    return cfg


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
