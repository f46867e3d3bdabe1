"""Training tasks: what the one training loop optimizes.

A task gives the trainer a ``train_set`` (items are tuples of tensors; a batch stacks
items), channel counts for building the model, ``loss(model, batch)``, ``evaluate(model,
device)`` (a test error, lower is better), ``prepare()`` run once on a fresh run, and
``state_modules()`` (e.g. normalizers) saved in checkpoints; optionally ``metric``, the
``metrics.jsonl`` key of its test error (default ``test_rel_l2``), and ``metric_label``, its
name with units as ``sciops train`` prints it. :class:`SupervisedTask` is the
default; physics-informed and particle tasks implement the same members.

Supervised pairs ``(x, y)`` come from a stored dataset with variable selection and windows.

Time-dependent variables (dims ``sample, time, *space``) contribute one channel per time
step of a window; static ones (``sample, *space``) one channel. For a window starting at
``s``: inputs are times ``s .. s+in_steps-1``, targets ``s+in_steps .. s+in_steps+out_steps-1``
(static targets ignore the window). Items are read lazily, one sample slice at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from sciops import pdes
from sciops.data import known_recipes, load_recipe, open_samples
from sciops.data.store import read_manifest
from sciops.errors import SciopsError
from sciops.train.config import DataConfig, RunConfig
from sciops.train.losses import get_loss, rel_lp


class Task(Protocol):
    """What the trainer needs from a task (see the module docstring)."""

    train_set: Dataset
    in_channels: int
    out_channels: int
    metric: str
    """Key of the test error in ``metrics.jsonl`` (the trainer defaults to ``test_rel_l2``)."""
    metric_label: str
    """Its printed name, with units if it has any."""

    def state_modules(self) -> dict[str, nn.Module]: ...

    def prepare(self) -> None: ...

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor: ...

    def evaluate(self, model: nn.Module, device: torch.device) -> float: ...


def data_root() -> Path:
    """Where named datasets live: ``$SCIOPS_DATA``, default ``./data``."""
    return Path(os.environ.get("SCIOPS_DATA", "data"))


def find_dataset(name_or_path: str) -> Path | None:
    """An existing path as given, else ``<data root>/<name>`` if it exists, else None."""
    for p in (Path(name_or_path), data_root() / name_or_path):
        try:
            if p.exists():
                return p
        except (OSError, ValueError):  # a name no file system accepts (NUL, too long)
            pass
    return None


def resolve_dataset(name_or_path: str, key: str = "data.dataset") -> Path:
    """:func:`find_dataset`, or an error naming the recipe ``key`` and the ``sciops generate``
    command that makes it: a dataset recipe NAME is generated into ``<data root>/NAME``, a
    path from the dataset recipe named like its last component into that path."""
    path = find_dataset(name_or_path)
    if path is not None:
        return path
    recipes = known_recipes("datasets")
    if name_or_path in recipes:
        out = data_root() / name_or_path
        hint = f"generate it with `sciops generate {name_or_path} --out {out}`"
    else:
        out = Path(name_or_path)
        recipe = out.name if out.name in recipes else "RECIPE"
        hint = (f"generate it with `sciops generate {recipe} --out {out}` (dataset recipes: "
                f"`sciops list`), or point --data at an existing dataset")
    also = "" if out == data_root() / name_or_path else f" (also looked for " \
        f"{data_root() / name_or_path})"
    raise SciopsError(f"{key}={name_or_path!r}: no such dataset{also}; {hint}")


def kind_of(dims: Iterable[Sequence[str]]) -> str:
    """The data kind of variables with these dims: ``particle`` if one has a ``particle``
    dim, else ``<N>d grid`` with N the most spatial axes (x, y, z) of any variable."""
    dims = [tuple(d) for d in dims]
    if any("particle" in d for d in dims):
        return "particle"
    return f"{max((sum(a in d for a in 'xyz') for d in dims), default=0)}d grid"


def dataset_kind(name_or_path: str) -> tuple[str, str] | None:
    """``(dataset recipe name, data kind)`` of a stored dataset (from its manifest) or of a
    dataset recipe name; None when neither tells (a peer file, an unknown name)."""
    path = find_dataset(name_or_path)
    if path is not None and (path / "manifest.json").is_file():
        recipe = read_manifest(path)["recipe"]
        name, pde = recipe.get("name", ""), recipe.get("pde", "")
    elif path is None and name_or_path in known_recipes("datasets"):
        name, pde = name_or_path, load_recipe(name_or_path).pde
    else:
        return None
    try:
        variables = pdes.get(pde).variables
    except KeyError:
        return None
    return name, kind_of(v.dims for v in variables.values())


def check_split(path: Path, stored: int, cfg: DataConfig) -> None:
    """Refuse a split that needs more than the ``stored`` samples of ``path``, proposing one
    in the same proportions."""
    if cfg.test:
        if cfg.train_samples <= stored:
            return
        raise SciopsError(f"{path}: holds {stored} samples, fewer than data.train_samples = "
                          f"{cfg.train_samples}; use --set data.train_samples={stored}")
    need = cfg.train_samples + cfg.test_samples
    if need <= stored:
        return
    test = min(stored - 1, max(1, round(stored * cfg.test_samples / need))) \
        if cfg.test_samples else 0
    raise SciopsError(
        f"{path}: holds {stored} samples, fewer than data.train_samples + data.test_samples = "
        f"{cfg.train_samples} + {cfg.test_samples} = {need}; use a split that fits, e.g. "
        f"--set data.train_samples={stored - test} --set data.test_samples={test}")


class WindowedPairs(Dataset):
    """``pairs[i] -> (x, y)``: x ``(C_in, *space)``, y ``(C_out, *space)``, float32."""

    def __init__(self, path: str | os.PathLike, cfg: DataConfig, samples: range,
                 store: Dataset | None = None):
        """``store``: the ``open_samples`` of ``path`` with at least the inputs and targets
        (opened here when not given)."""
        self.cfg = cfg
        names = list(dict.fromkeys([*cfg.inputs, *cfg.targets]))
        self.store = store if store is not None else \
            open_samples(path, names, aliases=cfg.variables)
        if samples.stop > len(self.store):
            raise SciopsError(f"{path}: holds {len(self.store)} samples; samples "
                              f"[{samples.start}, {samples.stop}) were asked for")
        self.samples = samples
        self.timed = {n: "time" in self.store.dims[n] for n in names}
        first = self.store[0]
        n_times = next((first[n].shape[0] for n in names if self.timed[n]), 1)
        span = cfg.in_steps + cfg.out_steps
        if any(self.timed.values()) and span > n_times:
            raise SciopsError(f"data.in_steps + data.out_steps = {span} exceeds the {n_times} "
                              f"stored times of {path}")
        if not any(self.timed.values()) or cfg.windows == "first":
            self.starts = [0]
        else:
            self.starts = list(range(0, n_times - span + 1, cfg.window_stride))

    @property
    def in_channels(self) -> int:
        return sum(self.cfg.in_steps if self.timed[n] else 1 for n in self.cfg.inputs)

    @property
    def out_channels(self) -> int:
        return sum(self.cfg.out_steps if self.timed[n] else 1 for n in self.cfg.targets)

    def __len__(self) -> int:
        return len(self.samples) * len(self.starts)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        k, w = divmod(i, len(self.starts))
        s = self.starts[w]
        fields = self.store[self.samples[k]]
        c = self.cfg
        x = [fields[n][s:s + c.in_steps] if self.timed[n] else fields[n][None] for n in c.inputs]
        y = [fields[n][s + c.in_steps:s + c.in_steps + c.out_steps] if self.timed[n]
             else fields[n][None] for n in c.targets]
        return torch.cat(x), torch.cat(y)


class Normalizer(torch.nn.Module):
    """Per-channel affine standardization ``(x - mean) / std``, statistics from data.

    ``mean``/``std`` have shape ``(C,)``; applied over ``(batch, C, *space)``. Stored in
    checkpoints as buffers, so predictions use the training statistics.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    @torch.no_grad()
    def fit(self, batches, index: int) -> Normalizer:
        """Streaming mean/variance (float64) over item ``index`` of each batch."""
        n, s1, s2 = 0, 0.0, 0.0
        for batch in batches:
            t = batch[index].double().transpose(0, 1).reshape(batch[index].shape[1], -1)
            n += t.shape[1]
            s1 = s1 + t.sum(1)
            s2 = s2 + (t * t).sum(1)
        mean = s1 / n
        var = (s2 / n - mean**2).clamp_min(0)
        self.mean.copy_(mean.float())
        self.std.copy_(var.sqrt().clamp_min(1e-8).float())
        return self

    def _shape(self, x: Tensor) -> tuple[int, ...]:
        return (1, -1) + (1,) * (x.ndim - 2)

    def encode(self, x: Tensor) -> Tensor:
        return (x - self.mean.view(self._shape(x))) / self.std.view(self._shape(x))

    def decode(self, x: Tensor) -> Tensor:
        return x * self.std.view(self._shape(x)) + self.mean.view(self._shape(x))


def test_sets(cfg: DataConfig, split: WindowedPairs) -> dict[str, WindowedPairs]:
    """The test sets by metric key: each separate set of ``cfg.test`` whole as
    ``<name>_rel_l2``, else the dataset's own test ``split`` as ``test_rel_l2``."""
    if not cfg.test:
        return {"test_rel_l2": split}
    out = {}
    for name, data in cfg.test.items():
        path = resolve_dataset(data, f"data.test.{name}")
        n = len(open_samples(path, cfg.inputs[:1], aliases=cfg.variables))
        out[f"{name}_rel_l2"] = WindowedPairs(path, cfg, range(n))
    return out


def split_ranges(cfg: DataConfig) -> tuple[range, range]:
    """Train and test sample ranges: the first ``train_samples``, then ``test_samples`` (none
    when ``cfg.test`` names separate test sets)."""
    train = range(0, cfg.train_samples)
    return train, range(train.stop, train.stop + (0 if cfg.test else cfg.test_samples))


def ordered_batches(ds: Dataset, batch: int = 32):
    """Iterate ``ds`` in order as stacked batches (for statistics and evaluation)."""
    for i in range(0, len(ds), batch):
        items = [ds[j] for j in range(i, min(i + batch, len(ds)))]
        yield tuple(torch.stack([it[k] for it in items]) for k in range(len(items[0])))



class SupervisedTask:
    """Grid-to-grid regression on a stored dataset, with standardized inputs and targets.

    The model sees standardized inputs and predicts standardized targets; the loss and the
    test error (mean per-sample relative L2) are computed in data units. ``train.normalize``
    chooses what is standardized ('both', 'output', 'none'); the others keep identity
    normalizers (mean 0, std 1), saved like fitted ones.
    """

    metric, metric_label = "test_rel_l2", "test rel. L2"

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        path = resolve_dataset(cfg.data.dataset)
        store = open_samples(path, list(dict.fromkeys([*cfg.data.inputs, *cfg.data.targets])),
                             aliases=cfg.data.variables)
        check_split(path, len(store), cfg.data)
        train_range, test_range = split_ranges(cfg.data)
        self.train_set = WindowedPairs(path, cfg.data, train_range, store)
        self.test_sets = test_sets(cfg.data, WindowedPairs(path, cfg.data, test_range, store))
        if cfg.data.test:
            first = next(iter(cfg.data.test))
            self.metric, self.metric_label = f"{first}_rel_l2", f"{first} rel. L2"
        self.in_channels = self.train_set.in_channels
        self.out_channels = self.train_set.out_channels
        self.space = tuple(self.train_set[0][0].shape[1:])
        """Points per spatial axis of the grid."""
        self.x_norm = Normalizer(self.in_channels)
        self.y_norm = Normalizer(self.out_channels)
        self.loss_fn = get_loss(cfg.train.loss, cfg.train.loss_reduction)

    def state_modules(self) -> dict[str, nn.Module]:
        return {"x": self.x_norm, "y": self.y_norm}

    def prepare(self) -> None:
        """Fit the normalizers ``train.normalize`` asks for on the training pairs."""
        mode = self.cfg.train.normalize
        if mode == "both":
            self.x_norm.fit(ordered_batches(self.train_set, 64), 0)
        if mode in ("both", "output"):
            self.y_norm.fit(ordered_batches(self.train_set, 64), 1)

    @torch.no_grad()
    def fit_model(self, model: nn.Module) -> None:
        """Fit a model that is fitted in one pass, not trained by gradient (``model.fit(x, y)``,
        e.g. ``rom-net``), on all training pairs, standardized as the trained models see them."""
        x, y = (torch.cat(t) for t in zip(*ordered_batches(self.train_set, 64)))
        model.fit(self.x_norm.encode(x), self.y_norm.encode(y))

    def predict(self, model: nn.Module, x: Tensor) -> Tensor:
        """Data-units prediction for data-units input ``x`` (batch, C_in, *space)."""
        return self.y_norm.decode(model(self.x_norm.encode(x)))

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        """``train.loss`` of the prediction in data units, or with ``train.loss_units =
        "normalized"`` of the raw output against the standardized targets."""
        x, y = batch
        normalized = self.cfg.train.loss_units == "normalized"
        with torch.autocast(x.device.type, dtype=torch.bfloat16,
                            enabled=self.cfg.train.amp == "bf16"):
            pred = model(self.x_norm.encode(x)) if normalized else self.predict(model, x)
        return self.loss_fn(pred.float(), self.y_norm.encode(y) if normalized else y)

    @torch.no_grad()
    def scores(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Mean per-sample relative L2 error of each test set, by metric key (NaN for an
        empty one)."""
        out = {}
        for key, pairs in self.test_sets.items():
            total, count = 0.0, 0
            for x, y in ordered_batches(pairs, self.cfg.train.batch_size):
                pred = self.predict(model, x.to(device)).float()
                total += float(rel_lp(pred, y.to(device))) * len(x)
                count += len(x)
            out[key] = total / count if count else float("nan")
        return out

    def evaluate(self, model: nn.Module, device: torch.device) -> float:
        """The error on the first test set (the one that picks ``best.pt``)."""
        return self.scores(model, device)[self.metric]
