"""One training loop for every model in the zoo.

``Trainer(cfg, run_dir).fit()`` builds the model from the registry and optimizes a task
(:mod:`sciops.train.task`; by default supervised pairs streamed from a stored dataset,
standardized with statistics stored in the run) with AdamW. Exact resume: the sample order
of epoch ``e`` depends only on ``(seed, e)``, and checkpoints hold model, optimizer,
scheduler, the task's modules (normalizers), RNG state and
the position inside the epoch, so a stopped-and-resumed run ends bitwise equal to an
uninterrupted one (CPU). Under ``torchrun`` the global batch is split over the ranks and
gradients are averaged by DDP, so N ranks with batch b equal one process with batch N·b.

Run directory: ``config.json``, ``metrics.jsonl`` (one JSON line per evaluation; a
non-finite number is written as ``null``), ``last.pt`` and ``best.pt`` (see
:mod:`sciops.train.checkpoint`).

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
from sciops.errors import SciopsError
from sciops.train import checkpoint, distributed
from sciops.train.config import RunConfig
from sciops.train.task import SupervisedTask, Task


def build_model(cfg: RunConfig, in_channels: int, out_channels: int) -> nn.Module:
    """The registry model of ``cfg.model`` with channel counts checked against the data."""
    kw = {k: v for k, v in cfg.model.items() if k != "name"}
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


def default_task(cfg: RunConfig) -> Task:
    """The task a recipe implies: particle rollouts for the graph models, else grid pairs."""
    if cfg.model["name"] in ("giorom", "gns"):
        from sciops.train.particles import ParticleTask  # imports the mpm2d definitions

        return ParticleTask(cfg)
    return SupervisedTask(cfg)


class Trainer:
    """Trains ``cfg`` into ``run_dir``; see the module docstring for the guarantees."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, *, device: str | None = None,
                 progress: bool = True, task: Task | None = None):
        self.cfg = cfg
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
        self.model = build_model(cfg, self.task.in_channels, self.task.out_channels)
        self.model.to(self.ctx.device)
        for module in self.task.state_modules().values():
            module.to(self.ctx.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=tc.lr,
                                     weight_decay=tc.weight_decay)
        world_drop = self.ctx.world > 1  # uneven last batches cannot be split over ranks
        n = len(self.train_set)
        self.steps_per_epoch = n // tc.batch_size if world_drop else math.ceil(n / tc.batch_size)
        if self.steps_per_epoch == 0:
            raise SciopsError(f"train.batch_size={tc.batch_size} exceeds the {n} training pairs")
        total = tc.epochs * self.steps_per_epoch
        if tc.scheduler == "cosine":
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=total)
        elif tc.scheduler == "step":
            self.sched = torch.optim.lr_scheduler.StepLR(
                self.opt, step_size=tc.step_size * self.steps_per_epoch, gamma=tc.gamma)
        else:
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda _: 1.0)
        self.ddp = (DistributedDataParallel(self.model) if self.ctx.world > 1 else self.model)
        self.epoch, self.step, self.step_in_epoch, self.best = 0, 0, 0, math.inf

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
                "step": self.step, "step_in_epoch": self.step_in_epoch, "best": self.best}

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

    def evaluate(self) -> float:
        """The task's test error for the current weights."""
        self.model.eval()
        try:
            return self.task.evaluate(self.model, self.ctx.device)
        finally:
            self.model.train()

    # -- the loop -------------------------------------------------------------------------
    def fit(self, resume: bool = False, max_steps: int | None = None) -> dict[str, Any]:
        """Train (or resume) until ``epochs`` end, the time budget runs out, or the global
        step reaches ``max_steps``. Returns the last logged metrics."""
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
            self.task.prepare()
        t0 = time.perf_counter()
        budget = tc.max_minutes * 60 if tc.max_minutes > 0 else math.inf
        self.model.train()
        while self.epoch < tc.epochs:
            bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch,
                       disable=not self.progress, desc=f"epoch {self.epoch + 1}/{tc.epochs}",
                       leave=False, dynamic_ncols=True)
            running, seen, stop = 0.0, 0, False
            for batch in self._batches(self.epoch, self.step_in_epoch):
                loss = self.task.loss(self.ddp, batch)
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
                running += value
                seen += 1
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4g}")
                if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                    self._save("last.pt")
                stop = (max_steps is not None and self.step >= max_steps) or \
                    time.perf_counter() - t0 > budget
                if stop:
                    break
            bar.close()
            if self.step_in_epoch >= self.steps_per_epoch:
                self.epoch += 1
                self.step_in_epoch = 0
                last = {"epoch": self.epoch, "step": self.step,
                        "train_loss": running / max(seen, 1),
                        "lr": self.opt.param_groups[0]["lr"],
                        "seconds": round(time.perf_counter() - t0, 3)}
                if self.epoch % tc.eval_every == 0 or self.epoch == tc.epochs:
                    last["test_rel_l2"] = self.evaluate() if self.ctx.main else math.nan
                    if self.ctx.main and last["test_rel_l2"] < self.best:
                        self.best = last["test_rel_l2"]
                        self._save("best.pt", collective=False)
                self._log(last)
            self._save("last.pt")
            self.ctx.barrier()
            if stop:
                break
        return last
