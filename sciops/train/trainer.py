"""One training loop for every model in the zoo.

``Trainer(cfg, run_dir).fit()`` builds the model from the registry and optimizes a task
(:mod:`sciops.train.task`; by default supervised pairs streamed from a stored dataset,
standardized (``train.normalize``) with statistics stored in the run) with AdamW and the
schedule of :func:`build_scheduler`. Exact resume: the sample order
of epoch ``e`` depends only on ``(seed, e)``, and checkpoints hold model, optimizer,
scheduler, the task's modules (normalizers), RNG state and
the position inside the epoch, so a stopped-and-resumed run ends bitwise equal to an
uninterrupted one (CPU). Under ``torchrun`` the global batch is split over the ranks and
gradients are averaged by DDP, so N ranks with batch b equal one process with batch N·b.

Run directory: ``config.json``, ``metrics.jsonl`` (one JSON line per evaluation, the test
error under the task's ``metric`` name, default ``test_rel_l2``; a non-finite number is
written as ``null``), ``last.pt`` and ``best.pt`` (see
:mod:`sciops.train.checkpoint`), ``provenance.json`` (the training data, which ``predict``
and ``evaluate`` compare with theirs: :mod:`sciops.train.provenance`).

A non-finite training loss (NaN or inf: non-finite data, a learning rate that is too high)
stops the run with a :class:`~sciops.errors.SciopsError` naming the epoch and step, before
the step is taken, on every DDP rank at once (a finiteness flag is max-reduced over the
ranks before ``backward``). Weights are checked before every save, so ``last.pt`` and
``best.pt`` keep the last good state and never hold non-finite weights.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from sciops import atomic, models
from sciops.errors import SciopsError, check_terminated
from sciops.train import checkpoint, distributed, memory, provenance
from sciops.train.config import RunConfig, TrainConfig
from sciops.train.particles import ParticleTask
from sciops.train.pino import PinoTask
from sciops.train.task import SupervisedTask, Task, dataset_kind, resolve_dataset


def build_model(cfg: RunConfig, in_channels: int, out_channels: int,
                space: tuple[int, ...] | None = None) -> nn.Module:
    """The registry model of ``cfg.model`` with channel counts checked against the data, and
    Fourier modes (``n_modes``) against the grid ``space`` (points per axis) when given: an
    axis of ``n`` points holds ``n`` modes up to its Nyquist frequency, no more."""
    kw = {k: v for k, v in cfg.model.items() if k != "name"}
    modes = kw.get("n_modes")
    if space and isinstance(modes, (list, tuple)) and len(modes) == len(space) and all(
            type(m) is int for m in modes) and any(m > n for m, n in zip(modes, space)):
        raise SciopsError(
            f"model.n_modes={list(modes)} exceeds the grid {' x '.join(map(str, space))} of "
            f"data.dataset={cfg.data.dataset!r}: an axis of n points holds at most n Fourier "
            f"modes (up to its Nyquist frequency); use at most --set "
            f"model.n_modes={','.join(str(min(m, n)) for m, n in zip(modes, space))}")
    for key, have in (("in_channels", in_channels), ("out_channels", out_channels)):
        if key in kw and kw[key] != have:
            raise SciopsError(
                f"model.{key}={kw[key]} but the data give {have} channels "
                f"(data.inputs={cfg.data.inputs}, data.targets={cfg.data.targets}, "
                f"in_steps={cfg.data.in_steps}, out_steps={cfg.data.out_steps})")
        kw[key] = have
    try:
        return models.build(cfg.model["name"], **kw)
    except (ValueError, TypeError) as e:
        raise SciopsError(f"[model] {cfg.model['name']}: {e}") from None


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """Permutation of ``n`` items for ``epoch``; depends only on (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def build_scheduler(opt: torch.optim.Optimizer, tc: TrainConfig, steps_per_epoch: int
                    ) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``tc``, stepped once per optimizer step.

    With ``W = warmup * steps_per_epoch`` warm-up steps, the lr at step ``k < W`` is
    ``lr * (warmup_start + (1 - warmup_start) * k / W)`` (a ``LambdaLR``: torch's
    ``LinearLR`` cannot start from 0); from step ``W`` on the schedule runs with ``j = k - W``:
    cosine ``lr/2 * (1 + cos(pi j / T))`` with ``T = t_max * steps_per_epoch`` (the remaining
    steps when t_max is 0), restarting at ``T``, ``T + t_mult T``, ... with ``restarts``; step
    ``lr * gamma ** (j // (step_size * steps_per_epoch))``; or constant. Without warm-up the
    schedule is the bare torch scheduler (the state layout of earlier checkpoints)."""
    sched = torch.optim.lr_scheduler
    warm = tc.warmup * steps_per_epoch
    if tc.scheduler == "cosine":
        period = tc.t_max * steps_per_epoch or tc.epochs * steps_per_epoch - warm
        main = (sched.CosineAnnealingWarmRestarts(opt, T_0=period, T_mult=tc.t_mult)
                if tc.restarts else sched.CosineAnnealingLR(opt, T_max=period))
    elif tc.scheduler == "step":
        main = sched.StepLR(opt, step_size=tc.step_size * steps_per_epoch, gamma=tc.gamma)
    else:
        main = sched.LambdaLR(opt, lambda _: 1.0)
    if not warm:
        return main
    start = tc.warmup_start
    ramp = sched.LambdaLR(opt, lambda k: start + (1 - start) * k / warm)
    return sched.SequentialLR(opt, [ramp, main], milestones=[warm])


def default_task(cfg: RunConfig) -> Task:
    """The task a recipe implies, from the kind of data the model declares
    (:func:`sciops.models.kind`): particle rollouts for ``"particle"`` models, else grid
    pairs (plus the PDE residual with ``[physics]``: :class:`~sciops.train.pino.PinoTask`). A
    model whose kind of data (particles or grids) the dataset does not hold is
    refused, and so is a ``"point"`` model (it solves one PDE instance, not a dataset)."""
    name = cfg.model["name"]
    kind = models.kind(name)
    if kind == "point":
        raise SciopsError(f"model {name} solves one PDE instance from its equation, not from a "
                          f"dataset: use `sciops solve PDE --method {name}`")
    path = resolve_dataset(cfg.data.dataset)
    particles = kind == "particle"
    found = dataset_kind(str(path))
    if found is not None and (found[1] == "particle") != particles:
        need = ("particle trajectories (dims sample, time, particle, dim; e.g. mpm2d-water)"
                if particles else "fields on a grid (dims sample[, time], x[, y, z]; e.g. "
                "ns2d-fno-nu1e-3)")
        raise SciopsError(f"model {name} needs {need}; data.dataset={cfg.data.dataset!r} is "
                          f"dataset {found[0]} with {found[1]} data")
    if particles and cfg.physics is not None:
        raise SciopsError(f"[physics]: model {name} trains on particles; the PDE residual "
                          f"needs a grid model (e.g. fno)")
    if particles:
        return ParticleTask(cfg)
    if cfg.physics is not None:
        return PinoTask(cfg)
    return SupervisedTask(cfg)


class Trainer:
    """Trains ``cfg`` into ``run_dir``; see the module docstring for the guarantees."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, *, device: str | None = None,
                 progress: bool = True, task: Task | None = None,
                 max_memory: int | str | None = None):
        self.cfg = cfg
        self.max_memory = max_memory
        self.run_dir = Path(run_dir)
        self.ctx = distributed.setup(device)
        self.progress = progress and self.ctx.main
        tc = cfg.train
        if tc.batch_size % self.ctx.world:
            raise SciopsError(f"train.batch_size={tc.batch_size} must be divisible by the "
                              f"{self.ctx.world} DDP ranks")
        self.task = task or default_task(cfg)
        self.train_set = self.task.train_set
        torch.manual_seed(tc.seed)
        self.model = build_model(cfg, self.task.in_channels, self.task.out_channels,
                                 getattr(self.task, "space", None))
        self.model.to(self.ctx.device)
        for module in self.task.state_modules().values():
            module.to(self.ctx.device)
        # a model without parameters but with fit(x, y) (rom-net) is fitted once, not trained
        self.fitted = not any(True for _ in self.model.parameters()) and \
            hasattr(self.model, "fit")
        if self.fitted and (not hasattr(self.task, "fit_model") or self.ctx.world > 1):
            raise SciopsError(f"model {cfg.model['name']} is fitted in one pass, not trained by "
                              f"gradient: run it in one process on a grid dataset")
        # a fitted model gets an empty stand-in parameter: one checkpoint layout for all
        params = list(self.model.parameters()) or [nn.Parameter(torch.zeros(0))]
        self.opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
        world_drop = self.ctx.world > 1  # uneven last batches cannot be split over ranks
        n = len(self.train_set)
        self.steps_per_epoch = n // tc.batch_size if world_drop else math.ceil(n / tc.batch_size)
        if self.steps_per_epoch == 0:
            raise SciopsError(f"train.batch_size={tc.batch_size} exceeds the {n} training pairs")
        self.sched = build_scheduler(self.opt, tc, self.steps_per_epoch)
        self.ddp = (DistributedDataParallel(self.model) if self.ctx.world > 1 else self.model)
        self.epoch, self.step, self.step_in_epoch, self.best = 0, 0, 0, math.inf
        self.loss_sum, self.loss_count = 0.0, 0  # over the steps of the current epoch
        self.taken_sum, self.taken_count = 0.0, 0  # over the steps of this fit() call
        self.seconds, self._t0 = 0.0, time.perf_counter()  # elapsed before this call; its start

    # -- pieces ---------------------------------------------------------------------------
    def _batches(self, epoch: int, start: int):
        tc, ctx = self.cfg.train, self.ctx
        order = epoch_order(tc.seed, epoch, len(self.train_set))
        for s in range(start, self.steps_per_epoch):
            idx = order[s * tc.batch_size:(s + 1) * tc.batch_size]
            chunk = len(idx) // ctx.world
            mine = idx[ctx.rank * chunk:(ctx.rank + 1) * chunk] if ctx.world > 1 else idx
            items = [self.train_set[int(i)] for i in mine]
            yield tuple(torch.stack([it[k] for it in items]).to(ctx.device)
                        for k in range(len(items[0])))

    def state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "config": self.cfg.to_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "task": {k: m.state_dict() for k, m in self.task.state_modules().items()},
                "rng": {"torch": torch.get_rng_state()}, "epoch": self.epoch,
                "step": self.step, "step_in_epoch": self.step_in_epoch, "best": self.best,
                "epoch_loss": {"sum": self.loss_sum, "count": self.loss_count},
                "seconds": self.elapsed()}

    def elapsed(self) -> float:
        """Training seconds of the run, earlier (resumed) calls of :meth:`fit` included."""
        return self.seconds + time.perf_counter() - self._t0

    def load_state(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise SciopsError(f"checkpoint does not match model {self.cfg.model['name']}: "
                              f"{(str(e).splitlines() or [type(e).__name__])[0]}") from None
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        for k, m in self.task.state_modules().items():
            m.load_state_dict(state["task"][k])
        torch.set_rng_state(state["rng"]["torch"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.step_in_epoch, self.best = state["step_in_epoch"], state["best"]
        # checkpoints written before these entries existed resume with zeros
        partial = state.get("epoch_loss", {})
        self.loss_sum, self.loss_count = partial.get("sum", 0.0), partial.get("count", 0)
        self.seconds = state.get("seconds", 0.0)

    def _any_rank(self, bad: bool | Tensor) -> bool:
        """True on every rank if ``bad`` holds on any rank (one all-reduce under DDP)."""
        if self.ctx.world == 1:
            return bool(bad)
        flag = torch.as_tensor(bad, dtype=torch.float32, device=self.ctx.device).reshape(1)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _saved(self) -> str:
        have = [n for n in ("last.pt", "best.pt") if (self.run_dir / n).is_file()]
        if not have:
            return "no checkpoint was written"
        return (f"{' and '.join(have)} in {self.run_dir} "
                f"{'keep' if len(have) > 1 else 'keeps'} the last good state")

    def _diverged(self, what: str, batch: tuple[Tensor, ...] | None = None, *,
                  taken: bool = False) -> SciopsError:
        """The error for a non-finite training quantity ``what``, naming the step (the next
        one, or the one just ``taken``) and the likely cause."""
        tc = self.cfg.train
        step, in_epoch = (self.step, self.step_in_epoch) if taken else \
            (self.step + 1, self.step_in_epoch + 1)
        epoch = self.epoch + (0 if taken and in_epoch == 0 else 1)
        where = f"epoch {epoch}, step {step}"
        if in_epoch:
            where += f" (step {in_epoch} of {self.steps_per_epoch} in the epoch)"
        modules = self.task.state_modules().values()
        if batch is not None and not all(bool(torch.isfinite(t).all()) for t in batch
                                         if t.is_floating_point()):
            cause = "this batch holds non-finite values: the dataset has NaN/inf"
        elif not all(bool(torch.isfinite(b).all()) for m in modules for b in m.buffers()
                     if b.is_floating_point()):
            cause = ("the normalization statistics are non-finite: the training data "
                     "hold NaN/inf")
        else:
            cause = (f"likely causes: non-finite data, or train.lr={tc.lr:g} too high "
                     f"(lower it, or set train.grad_clip)")
        return SciopsError(f"training {what} at {where}; {cause}; stopped, {self._saved()}")

    def _save(self, name: str, *, collective: bool = True) -> None:
        """Save ``name`` on the main rank, unless a weight is non-finite (then raise on every
        rank; ``collective=False`` when only the main rank calls this)."""
        bad = not all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        if self._any_rank(bad) if collective else bad:
            raise self._diverged("weights are not finite", taken=True)
        if self.ctx.main:
            checkpoint.save(self.run_dir / name, self.state())

    def _log(self, record: dict[str, Any]) -> None:
        if self.ctx.main:
            clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                     for k, v in record.items()}
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(clean, allow_nan=False) + "\n")

    def evaluate(self) -> dict[str, float]:
        """The task's test errors for the current weights by ``metrics.jsonl`` key, its
        ``metric`` first (a task with several test sets scores each in ``scores``)."""
        self.model.eval()
        try:
            if hasattr(self.task, "scores"):
                return self.task.scores(self.model, self.ctx.device)
            key = getattr(self.task, "metric", "test_rel_l2")
            return {key: self.task.evaluate(self.model, self.ctx.device)}
        finally:
            self.model.train()

    # -- the loop -------------------------------------------------------------------------
    def fit(self, resume: bool = False, max_steps: int | None = None) -> dict[str, Any]:
        """Train (or resume) until ``epochs`` end, the time budget runs out, or the global
        step reaches ``max_steps``. Returns the metrics logged at the last epoch end of this
        call or, when none ended, ``epoch`` (completed), ``step``, ``train_loss`` (mean over
        the steps of this call; NaN without any) and ``seconds``; a finished run resumed
        returns its last logged metrics."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.ctx.main:  # temporary files of a killed earlier run (rank 0 writes them all)
            atomic.remove_stale(self.run_dir)
        tc = self.cfg.train
        last: dict[str, Any] = {}
        if resume and (self.run_dir / "last.pt").is_file():
            self.load_state(checkpoint.load(self.run_dir / "last.pt", self.ctx.device))
            log = self.run_dir / "metrics.jsonl"
            if log.is_file() and log.read_text().strip():
                last = json.loads(log.read_text().strip().splitlines()[-1])
                last = {k: math.nan if v is None else v for k, v in last.items()}
        else:
            if self.ctx.main:
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
                (self.run_dir / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2))
                provenance.record(self.run_dir, resolve_dataset(self.cfg.data.dataset))
            self.task.prepare()
        self._t0 = time.perf_counter()
        self.taken_sum, self.taken_count = 0.0, 0
        if self.fitted:
            return self._fit_once() if self.epoch < tc.epochs else last
        one = tuple(t[None].to(self.ctx.device) for t in self.train_set[0])
        memory.check(getattr(self.task, "predict", None), one, self.model,
                     tc.batch_size // self.ctx.world, self.max_memory)
        budget = tc.max_minutes * 60 if tc.max_minutes > 0 else math.inf
        self.model.train()
        ended = False
        while self.epoch < tc.epochs:
            bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch,
                       disable=not self.progress, desc=f"epoch {self.epoch + 1}/{tc.epochs}",
                       leave=False, dynamic_ncols=True)
            if self.step_in_epoch == 0:
                self.loss_sum, self.loss_count = 0.0, 0
            stop = False
            for batch in self._batches(self.epoch, self.step_in_epoch):
                check_terminated()
                loss = self._step_loss(batch)
                value = float(loss.detach())
                if self._any_rank(not math.isfinite(value)):
                    bar.close()
                    raise self._diverged(f"loss is not finite ({value:.4g})" if not
                                         math.isfinite(value) else
                                         "loss is not finite on another DDP rank", batch)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if tc.grad_clip > 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
                self.opt.step()
                self.sched.step()
                self.step += 1
                self.step_in_epoch += 1
                self.loss_sum += value
                self.loss_count += 1
                self.taken_sum += value
                self.taken_count += 1
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4g}")
                if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                    self._save("last.pt")
                stop = (max_steps is not None and self.step >= max_steps) or \
                    time.perf_counter() - self._t0 > budget
                if stop:
                    break
            bar.close()
            if self.step_in_epoch >= self.steps_per_epoch:
                self.epoch += 1
                self.step_in_epoch = 0
                last = {"epoch": self.epoch, "step": self.step,
                        "train_loss": self.loss_sum / max(self.loss_count, 1),
                        "lr": self.opt.param_groups[0]["lr"],
                        "seconds": round(self.elapsed(), 3)}
                ended = True
                if self.epoch % tc.eval_every == 0 or self.epoch == tc.epochs:
                    self._evaluate_into(last)
                self._log(last)
            self._save("last.pt")
            self.ctx.barrier()
            if stop:
                break
        if ended or not self.taken_count:
            return last
        return {"epoch": self.epoch, "step": self.step,
                "train_loss": self.taken_sum / self.taken_count,
                "seconds": round(self.elapsed(), 3)}

    def _step_loss(self, batch: tuple[Tensor, ...]) -> Tensor:
        """The task loss of ``batch``; on the first step of a call, a model that cannot take
        this data (its ``ValueError``, or torch's shape ``RuntimeError``) is one clear error."""
        if self.taken_count:
            return self.task.loss(self.ddp, batch)
        try:
            return self.task.loss(self.ddp, batch)
        except (ValueError, RuntimeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise SciopsError(f"model {self.cfg.model['name']} cannot take the data of "
                              f"data.dataset={self.cfg.data.dataset!r}: {first}; adapt [model] "
                              f"to the data with --set model.KEY=VALUE") from None

    def _evaluate_into(self, record: dict[str, Any]) -> None:
        """Add the test errors to ``record``; save ``best.pt`` when the task's ``metric``
        (its first test set) improved."""
        key = getattr(self.task, "metric", "test_rel_l2")
        record.update(self.evaluate() if self.ctx.main else {key: math.nan})
        if self.ctx.main and record[key] < self.best:
            self.best = record[key]
            self._save("best.pt", collective=False)

    @torch.no_grad()
    def _fit_once(self) -> dict[str, Any]:
        """Fit a parameter-free model (rom-net) in one pass: it counts as all epochs and no
        step; the logged train loss is the task loss over the training set after the fit."""
        self.model.eval()
        try:
            self.task.fit_model(self.model)
            losses = [float(self.task.loss(self.model, batch)) for batch in self._batches(0, 0)]
        except ValueError as e:  # numpy's LinAlgError included: too few pairs for the model
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise SciopsError(f"model {self.cfg.model['name']} could not be fitted on the "
                              f"{len(self.train_set)} training pairs ({first}); give it more "
                              f"pairs (data.train_samples) or a smaller [model] (fewer "
                              f"clusters, lower rank) with --set model.KEY=VALUE") from None
        self.epoch = self.cfg.train.epochs
        last = {"epoch": self.epoch, "step": self.step,
                "train_loss": sum(losses) / len(losses), "lr": 0.0,
                "seconds": round(self.elapsed(), 3)}
        self._evaluate_into(last)
        self._log(last)
        self._save("last.pt")
        return last

    def summary(self, last: dict[str, Any]) -> str:
        """One line for the end of ``sciops train``: where the run stands, the train loss of
        this call's steps, and the latest test error under the task's own metric name."""
        tc = self.cfg.train
        where = (f"step {self.step} of {tc.epochs * self.steps_per_epoch} (epoch {self.epoch} "
                 f"of {tc.epochs} done")
        if self.step_in_epoch:
            where += (f", stopped at step {self.step_in_epoch} of {self.steps_per_epoch} in "
                      f"epoch {self.epoch + 1}")
        where += ")"
        if self.fitted:
            where = "fitted in one pass (no gradient steps)"
            loss = f"train loss {last['train_loss']:.4g} after the fit"
        elif self.taken_count:
            loss = (f"train loss {self.taken_sum / self.taken_count:.4g} (mean of the "
                    f"{self.taken_count} step{'s' * (self.taken_count > 1)} taken now)")
        else:
            loss = "no step left to take"
        key = getattr(self.task, "metric", "test_rel_l2")
        name = getattr(self.task, "metric_label", key)
        if key in last:
            others = "".join(f", {k.removesuffix('_rel_l2')} rel. L2 {v:.4g}"
                             for k, v in last.items() if k.endswith("_rel_l2") and k != key
                             and isinstance(v, float))
            test = f"{name} {last[key]:.4g}{others} (after epoch {last['epoch']})"
        else:
            test = (f"{name}: not evaluated yet (at epoch ends, every train.eval_every="
                    f"{tc.eval_every} epochs)")
        return f"{self.run_dir}: {where}; {loss}; {test}"
