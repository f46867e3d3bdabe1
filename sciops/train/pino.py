"""PINO: a grid operator trained with its PDE's own grid residual, for any time-dependent PDE.

The physics loss of predicted records is the mean square of
``pde.residual(fields, {"t": t}, params)`` (the grid backend: spectral in space, finite
differences in time; les3d's is its Galerkin residual in the LES band) over every record,
field and grid point (:func:`residual_mean_square`), divided by that of persistence (the
first record held still, whose residual is minus the PDE's tendency there): per sample
(:func:`physics_loss`) or, with data, its mean over the training set. It is dimensionless:
persistence scores about 1 and the PDE's own solution its discretization error. It is
computed on physical (de-normalized) fields, with the parameters the data were generated
with. Nothing
here knows a PDE family: what is family-specific is the PDE's residual (and, optionally, its
``project(fields, params)``, the space its solutions live in, e.g. les3d's divergence-free
LES band).

Two tasks for the one training loop (:mod:`sciops.train.trainer`):

* :class:`PinoTask` (``sciops train`` with a ``[physics]`` table, :class:`PinoConfig`):
  the supervised grid task of :class:`~sciops.train.task.SupervisedTask` (a window of
  ``in_steps`` records -> the next ``out_steps`` records as channels, standardized) with

      loss = data loss + weight * physics loss,

  the residual taken over the predicted records led by the last input record, at their times
  in the dataset, relative to the training set's mean for persistence (one scale for all
  samples: a nearly still sample would dominate a per-sample ratio); the PDE and its
  parameters come from the dataset's manifest. With ``unlabeled = N`` the physics loss also
  covers the predictions from the inputs of the ``N`` samples after the test split (their
  targets are never read): each training pair carries the inputs of the unlabeled windows
  whose index equals its own modulo the number of pairs. The test split's physics loss is
  logged as ``test_physics``.
* :class:`RolloutTask` (Python API, :class:`RolloutConfig`): PINO without solved data
  (LESnets, Zhao et al. 2024, arXiv:2411.04502, is its les3d case). The model maps the
  fields ``u0`` to ``K`` records ``u_k = C[u0 + k dt G N_k(u0 / U)]`` (``N`` the network
  output read as mean tendencies in units of ``G``, so the untrained model starts near
  persistence; ``U``, ``G`` the rms field and tendency of the training inputs, fitted by
  ``prepare`` and checkpointed; ``C`` the PDE's ``project`` if it has one). Inputs:

  - ``"rollout"`` (physics only): a pool of ``n_train`` random initial fields
    (``pde.initial``) that follows the model's own predictions: after a step, a field whose
    prediction has physics loss below ``rollout_tol`` is replaced by that prediction's last
    record, one that fails or whose next window would pass ``t_max`` restarts from a fresh
    random field. The pool is a checkpointed module (exact resume); under DDP each rank
    advances its own copy and rank 0's is saved.
  - ``"solver"``: windows of solver trajectories over ``[0, t_max]`` from ``n_train`` random
    initial fields (the labels of the data term), solved when the task is built.

  ``loss = physics_weight * physics + data_weight * data``, the data term the squared error of
  the increments ``u_k - u0`` relative to those of the labels (persistence scores 1). The
  test error (``test_rel_l2``) is the relative L2 error of the K records against the solver
  over non-overlapping windows of ``n_test`` held-out trajectories. Run it with
  ``Trainer(cfg, run_dir, task=RolloutTask(pde, params, RolloutConfig(...)))``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from sciops import pdes
from sciops.data import open_dataset
from sciops.data.store import read_manifest
from sciops.errors import SciopsError
from sciops.params import Params, param
from sciops.train.config import PinoConfig, RunConfig
from sciops.train.losses import rel_lp
from sciops.train.task import (
    SupervisedTask,
    WindowedPairs,
    ordered_batches,
    resolve_dataset,
    split_ranges,
)

__all__ = ["PinoConfig", "PinoTask", "RolloutConfig", "RolloutTask", "physics_loss",
           "residual_mean_square", "still_mean_square", "dataset_pde", "seeded_fields",
           "solver_trajectories", "stream_seed", "TRAIN", "TEST"]

Fields = dict[str, Tensor]


# -- the physics loss -----------------------------------------------------------------------

def residual_mean_square(pde: pdes.PDE, params: Params, fields: Mapping[str, Tensor],
                         t: np.ndarray) -> Tensor:
    """Per-sample mean square ``(B,)`` of the PDE's grid residual over every record, field and
    grid point of ``fields`` (name -> ``(B, T, *space)`` in physical units) at times ``t``
    ``(T,)``; units: (field/time)²."""
    return pde.residual(fields, {"t": t}, params).square().flatten(1).mean(1)


def still_mean_square(pde: pdes.PDE, params: Params, fields: Mapping[str, Tensor],
                      t: np.ndarray) -> Tensor:
    """:func:`residual_mean_square` ``(B,)`` of persistence: record 0 of ``fields`` held for
    three records (times ``t[:3]``), not differentiated; the mean square of the tendency."""
    still = {k: v[:, :1].expand(-1, 3, *v.shape[2:]) for k, v in fields.items()}
    with torch.no_grad():
        return residual_mean_square(pde, params, still, t[:3])


def physics_loss(pde: pdes.PDE, params: Params, fields: Mapping[str, Tensor],
                 t: np.ndarray) -> Tensor:
    """Per-sample PINO loss ``(B,)``: :func:`residual_mean_square` of ``fields`` (name ->
    ``(B, T, *space)``, ``T >= 3``) divided by :func:`still_mean_square`, so persistence
    scores 1, the PDE's solution ~0."""
    scale = still_mean_square(pde, params, fields, t)
    return residual_mean_square(pde, params, fields, t) / scale.clamp_min(
        torch.finfo(scale.dtype).tiny)


def dataset_pde(path: Path) -> tuple[pdes.PDE, Params]:
    """The PDE and the parameters a sciops dataset was generated with (its manifest)."""
    if not (path / "manifest.json").is_file():
        raise SciopsError(f"[physics]: {path} has no manifest.json naming its PDE; the PDE "
                          f"residual needs a dataset made by `sciops generate`")
    recipe = read_manifest(path)["recipe"]
    try:
        pde = pdes.get(recipe["pde"])
        return pde, pde.make_params(recipe.get("params") or {})
    except (KeyError, ValueError) as e:
        raise SciopsError(f"[physics]: {path}: cannot rebuild the PDE of its manifest "
                          f"({e})") from None


# -- data + residual: the task of `sciops train` with [physics] -----------------------------

class PinoTask(SupervisedTask):
    """:class:`SupervisedTask` plus ``weight`` times the physics loss of the prediction (see
    the module docstring). The targets must be time-dependent variables the PDE's residual
    reads (e.g. ``u`` of burgers1d, ``vorticity`` of ns2d)."""

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        d = cfg.data
        self.weight = cfg.physics.weight
        path = resolve_dataset(d.dataset)
        self.pde, self.params = dataset_pde(path)
        timed = self.train_set.timed
        static = [n for n in d.targets if not timed[n]]
        if static:
            raise SciopsError(f"[physics]: data.targets {static} have no time axis; the "
                              f"residual of {self.pde.name} needs predicted records")
        # the known record before the predicted ones leads each stack when every target is
        # also a time-dependent input
        self.lead = all(n in d.inputs for n in d.targets)
        self.x_at = _offsets(d.inputs, timed, d.in_steps)
        self.y_at = _offsets(d.targets, timed, d.out_steps)
        with open_dataset(path) as ds:
            t = np.asarray(ds["t"].values, dtype=np.float64)
        if d.windows != "first" and not np.allclose(np.diff(t), t[1] - t[0], rtol=1e-6):
            raise SciopsError(f"[physics]: {path} records are unevenly spaced in time; use "
                              f"data.windows='first'")
        # autonomous PDEs: every window's residual is that of the first window's times
        self.t = t[d.in_steps - self.lead:d.in_steps + d.out_steps]
        if len(self.t) < 3:
            raise SciopsError(f"[physics]: the residual's time derivative needs 3 records; "
                              f"data.out_steps={d.out_steps} gives {len(self.t)}")
        x, y = self.train_set[0]
        if cfg.physics.unlabeled:
            start = split_ranges(d)[1].stop
            stop = start + cfg.physics.unlabeled
            if stop > len(self.train_set.store):
                raise SciopsError(
                    f"{path}: holds {len(self.train_set.store)} samples; physics.unlabeled="
                    f"{cfg.physics.unlabeled} needs samples [{start}, {stop}) after the split; "
                    f"lower it (--set physics.unlabeled=N; 0: none)")
            extra = WindowedPairs(path, d, range(start, stop), self.train_set.store)
            self.train_set = _WithUnlabeled(self.train_set, extra)
        try:
            residual_mean_square(self.pde, self.params, self.frames(x[None], y[None]), self.t)
        except KeyError as e:
            raise SciopsError(f"[physics]: the residual of {self.pde.name} needs variable "
                              f"{e}; add it to data.targets (and data.inputs)") from None
        self.scale = Scale()

    def state_modules(self) -> dict[str, nn.Module]:
        return {**super().state_modules(), "physics": self.scale}

    def prepare(self) -> None:
        """Fit the normalizers and the physics scale (persistence's mean residual square over
        the training windows)."""
        super().prepare()
        total = sum(float(still_mean_square(self.pde, self.params, self.frames(x, y),
                                            self.t).sum())
                    for x, y, *_ in ordered_batches(self.train_set, 64))
        self.scale.value.fill_(total / len(self.train_set))

    def physics(self, x: Tensor, pred: Tensor) -> Tensor:
        """Per-sample physics loss ``(B,)`` of predictions ``pred`` (B, C_out, *space) in data
        units from inputs ``x`` (B, C_in, *space)."""
        r2 = residual_mean_square(self.pde, self.params, self.frames(x, pred), self.t)
        return r2 / self.scale.value.clamp_min(torch.finfo(r2.dtype).tiny)

    def frames(self, x: Tensor, pred: Tensor) -> Fields:
        """Predicted records by target, ``(B, T, *space)`` in data units and float64, led by
        the last input record when every target is an input; ``x``: (B, C_in, *space),
        ``pred``: (B, C_out, *space)."""
        d, out = self.cfg.data, {}
        for n in d.targets:
            y = pred[:, self.y_at[n]:self.y_at[n] + d.out_steps]
            if self.lead:
                last = self.x_at[n] + d.in_steps - 1
                y = torch.cat([x[:, last:last + 1], y], 1)
            # float64: record times rounded to float32 fail the uniform-spacing check of the
            # 4th-order time differences (rtol 1e-9)
            out[n] = y.double()
        return out

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        """``data + weight * physics``; batch ``(x, y)`` or, with unlabeled inputs, ``(x, y,
        u)`` with ``u`` (B, m, C_in, *space)."""
        x, y, *unlabeled = batch
        with torch.autocast(x.device.type, dtype=torch.bfloat16,
                            enabled=self.cfg.train.amp == "bf16"):
            pred = self.predict(model, x)
            if unlabeled and self.weight:
                u = unlabeled[0].flatten(0, 1)
                pred_u = self.predict(model, u)
        pred = pred.float()
        data = self.loss_fn(pred, y)
        if not self.weight:
            return data
        if unlabeled:
            x, pred = torch.cat([x, u]), torch.cat([pred, pred_u.float()])
        return data + self.weight * self.physics(x, pred).mean()

    @torch.no_grad()
    def scores(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """The test errors of :class:`SupervisedTask` and ``test_physics``, the mean physics
        loss of the predictions on the first test set (NaN without one)."""
        out = super().scores(model, device)
        total, count = 0.0, 0
        for x, _ in ordered_batches(next(iter(self.test_sets.values())),
                                    self.cfg.train.batch_size):
            x = x.to(device)
            pred = self.predict(model, x).float()
            total += float(self.physics(x, pred).sum())
            count += len(x)
        out["test_physics"] = total / count if count else math.nan
        return out


class Scale(nn.Module):
    """The physics loss's unit ``value`` ((field/time)², a float64 scalar buffer)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("value", torch.tensor(1.0, dtype=torch.float64))


class _WithUnlabeled(Dataset):
    """``items[i] -> (x, y, u)``: pair ``i`` of ``pairs`` and ``u`` (m, C_in, *space), the
    inputs of the windows ``i, i + n, i + 2n, ...`` of ``extra`` (``n = len(pairs)``, indices
    modulo ``len(extra)``, ``m = ceil(len(extra) / n)``)."""

    def __init__(self, pairs: WindowedPairs, extra: WindowedPairs):
        self.pairs, self.extra = pairs, extra
        self.m = math.ceil(len(extra) / len(pairs))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        n = len(self.pairs)
        u = [self.extra[(i + k * n) % len(self.extra)][0] for k in range(self.m)]
        return (*self.pairs[i], torch.stack(u))


def _offsets(names: Sequence[str], timed: Mapping[str, bool], steps: int) -> dict[str, int]:
    """First channel of each variable in a stack of ``names`` (``steps`` channels each
    time-dependent one, 1 each static one)."""
    out, at = {}, 0
    for n in names:
        out[n] = at
        at += steps if timed[n] else 1
    return out


# -- residual without data: the rollout task ------------------------------------------------

INPUTS = ("rollout", "solver")


@dataclass(frozen=True)
class RolloutConfig(Params):
    """Options of a :class:`RolloutTask` (defaults documented once, here)."""

    n_steps: int = param(4, "K, records predicted per model call", range=(1, None))
    dt: float = param(0.1, "time between records (time units)", range=(0.0, None),
                      open_low=True)
    physics_weight: float = param(1.0, "weight of the physics loss", range=(0.0, None))
    data_weight: float = param(0.0, "weight of the data loss; 0: physics only (LESnets); > 0 "
                               "needs inputs='solver' (labels)", range=(0.0, None))
    inputs: str = param("rollout", "'rollout' (random fields followed by the model's own "
                        "predictions) or 'solver' (windows of solver trajectories)",
                        choices=INPUTS)
    n_train: int = param(16, "pool size ('rollout') or training trajectories ('solver')",
                         range=(1, None))
    n_test: int = param(1, "held-out solver trajectories for the test error (0: none)",
                        range=(0, None))
    t_max: float = param(4.0, "end of the evolution the inputs cover (time units)",
                         range=(0.0, None), open_low=True)
    rollout_tol: float = param(1.0, "'rollout': a prediction with physics loss below this "
                               "replaces its input, one above restarts it from a fresh random "
                               "field (1: worse than persistence)", range=(0.0, None))
    seed: int = param(0, "seed of the random initial fields (train and test draw from "
                      "disjoint streams)", range=(0, None))

    def validate(self) -> None:
        if self.physics_weight == 0 and self.data_weight == 0:
            raise ValueError("physics_weight=0 and data_weight=0: the loss would be 0; set one "
                             "> 0")
        if self.data_weight > 0 and self.inputs != "solver":
            raise ValueError(f"data_weight={self.data_weight} needs labels: set inputs='solver'")
        if self.t_max < self.n_steps * self.dt - 1e-9:
            raise ValueError(f"t_max={self.t_max} is out of range; allowed "
                             f"[n_steps * dt = {self.n_steps * self.dt:g}, inf)")

    @property
    def n_records(self) -> int:
        """Records after t = 0 of a trajectory over ``[0, t_max]``."""
        return round(self.t_max / self.dt)


def seeded_fields(pde: pdes.PDE, params: Params, seeds: Sequence[int]) -> Fields:
    """Random initial fields by name, each ``(len(seeds), *space)`` float32, field ``i`` drawn
    by ``pde.initial`` from seed ``seeds[i]``, so it does not depend on the others drawn."""
    draws = [pde.initial(params, 1, torch.Generator().manual_seed(s)) for s in seeds]
    return {k: torch.cat([d[k] for d in draws]).float() for k in draws[0]}


def stream_seed(seed: int, stream: int, index: int) -> int:
    """Independent seeds per ``(seed, stream, index)``; the task draws training fields from
    stream ``TRAIN`` and test fields from ``TEST``, so other streams stay disjoint from both."""
    return int(np.random.SeedSequence((seed, stream, index)).generate_state(1)[0])


TRAIN, TEST = 0, 1


def solver_trajectories(pde: pdes.PDE, params: Params, seeds: Sequence[int], names: Sequence[str],
                        t_final: float, n_records: int) -> Tensor:
    """Solver fields ``names`` stacked, ``(len(seeds), n_records + 1, F, *space)`` float32, on
    ``[0, t_final]`` from the inputs ``pde.sample_inputs`` draws from each seed (the fields of
    :func:`seeded_fields` for the same seeds)."""
    q = params.replace(t_final=t_final, n_records=n_records)
    draws = [pde.sample_inputs(q, 1, torch.Generator().manual_seed(s)) for s in seeds]
    out = pde.solve(q, {k: torch.cat([d[k] for d in draws]) for k in draws[0]})
    return torch.stack([out[k] for k in names], 2).float()


class InputPool(nn.Module):
    """Physics-only training inputs: ``fields`` (N, F, *space), each one's ``time`` since its
    random start (N,) and the number of random fields drawn so far ``draws`` (seeds)."""

    def __init__(self, fields: Tensor):
        super().__init__()
        self.register_buffer("fields", fields.float())
        self.register_buffer("time", torch.zeros(len(fields), dtype=torch.float64))
        self.register_buffer("draws", torch.tensor(len(fields)))


class Scales(nn.Module):
    """Model units: rms ``field`` and rms ``tendency`` (field/time) of the training inputs."""

    def __init__(self):
        super().__init__()
        self.register_buffer("field", torch.tensor(1.0))
        self.register_buffer("tendency", torch.tensor(1.0))


class _PoolItems(Dataset):
    """``items[i] -> (i, pool.fields[i])`` (the pool's current field, read at access)."""

    def __init__(self, pool: InputPool):
        self.pool = pool

    def __len__(self) -> int:
        return len(self.pool.fields)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return torch.tensor(i), self.pool.fields[i]


class _Windows(Dataset):
    """``windows[i] -> (i, u(t_s), u(t_s + dt .. t_s + K dt))`` of trajectories
    (S, T, F, *space), every start ``s`` in ``starts``."""

    def __init__(self, trajectories: Tensor, n_steps: int, starts: list[int]):
        self.traj, self.k, self.starts = trajectories, n_steps, starts

    def __len__(self) -> int:
        return len(self.traj) * len(self.starts)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        j, w = divmod(i, len(self.starts))
        s = self.starts[w]
        return torch.tensor(i), self.traj[j, s], self.traj[j, s + 1:s + 1 + self.k]


class RolloutTask:
    """Trainer task of a PINO without solved data (see the module docstring) on a PDE with
    random initial fields (``initial(params, n, generator)``, e.g. every semilinear family,
    les3d) and a grid residual.

    ``params``: those of the PDE; its grid is the model's, which must map ``(B, F, *space) ->
    (B, F K, *space)`` for its ``F`` fields (the trainer builds it from the run's ``[model]``
    with these channel counts). The run's ``[data]``, ``train.loss`` and ``train.amp`` are
    not used: the loss is the one above, in float32.
    """

    def __init__(self, pde: pdes.PDE, params: Params, options: RolloutConfig):
        if not hasattr(pde, "initial"):
            raise ValueError(f"{pde.name}: a PINO without data needs its random initial fields "
                             f"(an `initial` method)")
        self.pde, self.params, self.options = pde, params, options
        o = options
        first = seeded_fields(pde, params, [stream_seed(o.seed, TRAIN, i)
                                            for i in range(o.n_train)])
        self.names = list(first)
        self._train_u0 = torch.stack([first[k] for k in self.names], 1)
        self.in_channels = len(self.names)
        self.out_channels = len(self.names) * o.n_steps
        self.t = o.dt * np.arange(o.n_steps + 1)
        self.scales = Scales()
        self.pool: InputPool | None = None
        if o.inputs == "rollout":
            self.pool = InputPool(self._train_u0)
            self.train_set: Dataset = _PoolItems(self.pool)
        else:
            traj = self._trajectories(TRAIN, o.n_train)
            self.train_set = _Windows(traj, o.n_steps, list(range(o.n_records - o.n_steps + 1)))
        self.test_set: _Windows | None = None
        if o.n_test:
            self.test_set = _Windows(self._trajectories(TEST, o.n_test), o.n_steps,
                                     list(range(0, o.n_records - o.n_steps + 1, o.n_steps)))

    def _trajectories(self, stream: int, n: int) -> Tensor:
        o = self.options
        seeds = [stream_seed(o.seed, stream, i) for i in range(n)]
        return solver_trajectories(self.pde, self.params, seeds, self.names, o.t_max,
                                   o.n_records)

    def fields(self, stack: Tensor) -> Fields:
        """``(B, T, F, *space)`` -> fields by name, each ``(B, T, *space)``."""
        return {k: stack[:, :, i] for i, k in enumerate(self.names)}

    def project(self, stack: Tensor) -> Tensor:
        """``stack`` (..., F, *space) onto the PDE's solution space (its ``project``; as it
        is without one)."""
        project = getattr(self.pde, "project", None)
        if project is None:
            return stack
        f = project({k: stack.select(-1 - len(self.space), i) for i, k in enumerate(self.names)},
                    self.params)
        return torch.stack([f[k] for k in self.names], -1 - len(self.space))

    @property
    def space(self) -> tuple[int, ...]:
        return tuple(self._train_u0.shape[2:])

    def state_modules(self) -> dict[str, nn.Module]:
        return {"scales": self.scales, **({} if self.pool is None else {"pool": self.pool})}

    @torch.no_grad()
    def prepare(self) -> None:
        """Fit the model units to the random initial fields of the training set."""
        u0 = self._train_u0
        g2 = still_mean_square(self.pde, self.params, self.fields(u0[:, None]), self.t).mean()
        self.scales.field.copy_(u0.square().mean().sqrt())
        self.scales.tendency.copy_(g2.sqrt())

    # -- prediction ---------------------------------------------------------------------------
    def frames(self, model: nn.Module, u0: Tensor) -> Tensor:
        """Records ``[C u0, u_1..u_K]`` (B, K + 1, F, *space) from ``u0`` (B, F, *space)."""
        k, f = self.options.n_steps, len(self.names)
        b, space = u0.shape[0], u0.shape[2:]
        steps = torch.as_tensor(self.t[1:], dtype=u0.dtype, device=u0.device)
        out = model(u0 / self.scales.field).view(b, k, f, *space)
        incr = out * (self.scales.tendency * steps).view(1, k, *[1] * (1 + len(space)))
        return self.project(torch.cat([u0[:, None], u0[:, None] + incr], 1))

    @torch.no_grad()
    def rollout(self, model: nn.Module, u0: Tensor, n_calls: int) -> Tensor:
        """Autoregressive prediction ``(B, 1 + n_calls K, F, *space)`` at ``t0 + j dt``:
        ``u0`` (B, F, *space) first, then each call's K records, the last fed back."""
        out = [u0]
        for _ in range(n_calls):
            out.extend(self.frames(model, out[-1])[:, 1:].unbind(1))
        return torch.stack(out, 1)

    # -- training -----------------------------------------------------------------------------
    def sample_losses(self, model: nn.Module, batch: tuple[Tensor, ...]
                      ) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample (B,) total, physics and data losses, and the predicted records
        (B, K + 1, F, *space)."""
        _, u0, *labels = batch
        o = self.options
        stack = self.frames(model, u0)
        zero = u0.new_zeros(len(u0))
        physics = physics_loss(self.pde, self.params, self.fields(stack), self.t) \
            if o.physics_weight else zero
        data = zero
        if o.data_weight:
            err = (stack[:, 1:] - labels[0]).square().flatten(1).mean(1)
            ref = (labels[0] - stack[:, :1]).square().flatten(1).mean(1)
            data = err / ref.clamp_min(torch.finfo(ref.dtype).tiny)
        return o.physics_weight * physics + o.data_weight * data, physics, stack

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        """Mean over the batch of the per-sample loss; with ``inputs='rollout'`` also advances
        the pool (see the module docstring)."""
        total, physics, stack = self.sample_losses(model, batch)
        if self.pool is not None:
            self._advance(batch[0], stack[:, -1].detach(), physics.detach())
        return total.mean()

    @torch.no_grad()
    def _advance(self, index: Tensor, last: Tensor, physics: Tensor) -> None:
        pool, o = self.pool, self.options
        span = o.n_steps * o.dt
        ok = physics < o.rollout_tol
        pool.fields[index[ok]] = last[ok].to(pool.fields.dtype)
        pool.time[index[ok]] += span
        restart = ~ok | (pool.time[index] + span > o.t_max + 1e-9)
        for i in index[restart].tolist():
            draw = int(pool.draws)
            fresh = seeded_fields(self.pde, self.params, [stream_seed(o.seed, TRAIN, draw)])
            pool.fields[i] = torch.stack([fresh[k][0] for k in self.names]).to(pool.fields)
            pool.time[i] = 0.0
            pool.draws += 1

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> float:
        """Mean relative L2 error of the K records against the solver over the test windows
        (NaN without test trajectories)."""
        if self.test_set is None:
            return math.nan
        errors = []
        for i in range(len(self.test_set)):
            _, u0, y = self.test_set[i]
            pred = self.frames(model, u0[None].to(device))[:, 1:]
            errors.append(float(rel_lp(pred, y[None].to(device))))
        return sum(errors) / len(errors)
