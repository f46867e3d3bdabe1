"""Physics-informed training: a PDE's own residual and side conditions train a pointwise net.

A :class:`Problem` is what a PINN needs from a PDE definition: the residual (the autograd
backend of ``PDE.residual``), the :class:`~sciops.pdes.base.Domain` (box, unknowns,
periodic coordinates, boundary and initial conditions) and a
:class:`~sciops.pdes.base.PointSample` (the instance's known fields, and its exact
solution when there is one). :meth:`Problem.from_pde` builds it from a registered PDE, so
nothing of the equation is written twice.

:class:`PhysicsTask` implements the trainer's Task protocol (:mod:`sciops.train.task`):
its ``train_set`` yields the current interior collocation points (one full batch per item)
and its loss is

    mean(residual²) + condition_weight * sum_conditions mean(condition residual²)

on the interior and face points. Collocation: ``"uniform"`` (i.i.d.), ``"sobol"``
(scrambled Sobol, :class:`torch.quasirandom.SobolEngine`) or ``"grid"`` (tensor grid);
with ``resample_every > 0`` the interior set is redrawn by residual-adaptive distribution
(RAR-D, Wu et al. 2023): from a uniform pool, points are drawn without replacement with
probability ``∝ e^k / mean(e^k) + c``, ``e`` the residual norm at the point. The points
and the step count are buffers of a task module, so checkpoints hold them and a resumed
run continues from the same set. ``bc="exact"`` imposes Dirichlet conditions with a
distance-function ansatz instead of penalties: ``u = G + D N`` with ``N`` the network
output, ``D`` the product of normalized distances to the faces where ``u`` is set and
``G`` the data of at most one face (e.g. the initial condition), which must not depend on
that face's coordinate and must vanish on the other faces of ``u``.

:func:`train_pinn` runs Adam through the shared :class:`~sciops.train.trainer.Trainer`
and then L-BFGS here: the trainer's loop is first-order (one ``loss.backward()`` and one
``optimizer.step()`` per batch), whereas L-BFGS needs a closure that re-evaluates the full
loss inside its line search. :func:`solve_instance` solves one instance of a registered
PDE (``sciops solve``) with a method :func:`solve_methods` allows (``pinn`` or, for
steady PDEs, the Kronecker GP solver), and writes the field on the PDE's stored grid with
its error against a reference: the exact solution where the instance has one, else the
PDE's own solver on the same grid. With a manufactured solution (``--exact EXPR``,
:meth:`Problem.manufactured`) the source and side data come from EXPR through the PDE's own
residual and conditions, and the error is against EXPR on a fine uniform grid.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from sciops import pdes
from sciops.errors import SciopsError
from sciops.pdes.base import (
    PDE,
    Condition,
    Domain,
    Params,
    PointSample,
    SolverDiverged,
    dirichlet,
    param,
)
from sciops.train import checkpoint
from sciops.train.config import RunConfig, TrainConfig
from sciops.train.trainer import Trainer

__all__ = ["Problem", "PinnConfig", "PhysicsTask", "PinnResult", "train_pinn", "lbfgs",
           "solve_instance", "solve_methods", "METHODS"]

METHODS = ("pinn", "gp-kron")
NEEDS = {"pinn": "point samples, a pointwise domain and a pointwise (autograd) residual",
         "gp-kron": "a steady definition operator(u, d, p) = f with Dirichlet data on a "
                    "box without periodic coordinates"}
"""What each of :data:`METHODS` needs from a PDE (error messages)."""
SAMPLINGS = ("uniform", "sobol", "grid")
FILLED = ("name", "in_channels", "out_channels", "lower", "upper", "periods")
"""Keywords of the ``pinn`` model a solve sets from the PDE's box and unknowns (not options)."""
ACTIVATION_COPIES = 16
"""Copies of a hidden activation per collocation point held by one residual evaluation (the
forward values and the graphs of first and second derivatives; conservative)."""

Residual = Callable[[Mapping[str, Tensor], Mapping[str, Tensor]], Tensor]


@dataclass(frozen=True)
class Problem:
    """A residual ``(fields, coords) -> (N,) or (N, k)``, its domain and one instance."""

    residual: Residual
    domain: Domain
    sample: PointSample

    @classmethod
    def from_pde(cls, pde: PDE, params: Params, sample: PointSample) -> Problem:
        """The problem of a registered PDE: its residual and domain at ``params``."""
        return cls(lambda f, c: pde.residual(f, c, params), pde.domain(params), sample)

    def manufactured(self, exact: Callable[[Mapping[str, Tensor]], dict[str, Tensor]]
                     ) -> Problem:
        """The problem whose solution is ``exact`` (coords -> unknowns, autograd-
        differentiable): residual ``R(u) - R(u*)``, ``R(u*)`` by autograd at the same points
        with the same given fields (their sources cancel, coefficients stay); a Dirichlet
        condition on face ``coord = value`` takes the data ``u*`` there (given field
        ``"<output>@<condition>"``, constant along ``coord``, so ``bc='exact'`` can use it),
        any other condition ``C(u) - C(u*)``. ``sample.exact`` is ``exact``."""
        given, faces = self.sample.given, [c for c in self.domain.conditions if c.sets]

        def star(c: Mapping[str, Tensor]) -> dict[str, Tensor]:
            return {**given(c), **exact(c)}

        def given_star(c: Mapping[str, Tensor]) -> dict[str, Tensor]:
            return {**given(c), **{f"{k.sets[0]}@{k.name}": exact(
                {**c, k.coord: torch.full_like(c[k.coord], k.value)})[k.sets[0]] for k in faces}}

        def shifted(res: Residual) -> Residual:
            return lambda f, c: res(f, c) - res(star(c), c).detach()

        conditions = tuple(dirichlet(k.name, k.coord, k.value, k.sets[0], f"{k.sets[0]}@{k.name}")
                           if k.sets else dataclasses.replace(k, residual=shifted(k.residual))
                           for k in self.domain.conditions)
        return Problem(shifted(self.residual),
                       dataclasses.replace(self.domain, conditions=conditions),
                       PointSample(given_star, exact))


COUNT = (1, 2**63 - 1)
"""Range of a positive count option (int64)."""


@dataclass(frozen=True)
class PinnConfig(Params):
    """Options of a PINN solve (defaults documented once, here; ``sciops solve --option``)."""

    n_interior: int = param(2000, "interior collocation points", range=COUNT)
    n_boundary: int = param(256, "points per side condition (one point on the face of a 1-D "
                            "box)", range=COUNT)
    sampling: str = param("sobol", "collocation: i.i.d. 'uniform', scrambled 'sobol' or "
                          "'grid' (tensor grid, ~n_interior points)", choices=SAMPLINGS)
    resample_every: int = param(0, "redraw the interior points by RAR-D every this many Adam "
                                "steps (0: never)", range=(0, COUNT[1]))
    rar_pool: int = param(4, "RAR-D candidate pool, in multiples of n_interior", range=COUNT)
    rar_k: float = param(1.0, "RAR-D exponent k of the residual norm", range=(0.0, None))
    rar_c: float = param(1.0, "RAR-D uniform share c", range=(0.0, None))
    condition_weight: float = param(1.0, "weight of the side-condition penalties",
                                    range=(0.0, None))
    bc: str = param("soft", "'soft' (penalties) or 'exact' (distance-function ansatz for "
                    "Dirichlet conditions)", choices=("soft", "exact"))
    adam_steps: int = param(2000, "Adam steps (full batch)", range=(0, COUNT[1]))
    lr: float = param(1e-3, "Adam learning rate", range=(0.0, None), open_low=True)
    scheduler: str = param("none", "Adam learning-rate schedule", choices=("none", "cosine"))
    lbfgs_steps: int = param(500, "L-BFGS iterations after Adam (strong Wolfe line search; "
                             "0: none)", range=(0, COUNT[1]))
    steps_per_epoch: int = param(100, "Adam steps between the trainer's epoch ends (logging, "
                                 "checkpoint)", range=COUNT)
    eval_points: int = param(4096, "Sobol points of the final test error", range=COUNT)
    seed: int = param(0, "seed of the points and the network weights", range=(0, COUNT[1]))
    model: dict[str, Any] = param({"width": 64, "depth": 3}, "keywords of the ``pinn`` model "
                                  "(``--option model.KEY=JSON``; box bounds and periods are "
                                  "filled in)")

    def validate(self) -> None:
        filled = sorted(set(self.model) & set(FILLED))
        if filled:
            raise ValueError(f"model.{filled[0]} is set from the PDE (its box and unknowns), "
                             f"not an option")
        for key, value in self.model.items():
            if isinstance(value, bool) or not _finite_json(value):
                raise ValueError(f"model.{key}={value!r}: expected finite numbers or a name")
        pinn_model(self.model, 1, 1)

    def hidden_bytes(self, d: int, outputs: int) -> int:
        """Peak bytes of a solve in ``d`` coordinates with ``outputs`` unknowns: weights,
        gradients and two Adam moments, and :data:`ACTIVATION_COPIES` of every hidden unit at
        each collocation point of one residual evaluation (the RAR-D pool when resampling)."""
        net = pinn_model(self.model, d, outputs)
        item = 8 if self.model.get("dtype") == "float64" else 4
        units = sum(m.out_features for m in net.modules() if isinstance(m, nn.Linear))
        points = self.n_interior * (self.rar_pool if self.resample_every else 1) \
            + 2 * d * self.n_boundary
        weights = sum(p.numel() for p in net.parameters())
        return item * (4 * weights + ACTIVATION_COPIES * points * units)

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> PinnConfig:
        """From ``key=value`` strings; ``model.KEY`` sets a model keyword (JSON values)."""
        model = dict(cls().model)
        names = sorted(f.name for f in dataclasses.fields(cls) if f.name != "model")
        kw: dict[str, str] = {}
        for key, value in options.items():
            if key.startswith("model."):
                model[key[6:]] = _json_or_text(value)
            elif key in names:
                kw[key] = value
            else:
                raise ValueError(f"unknown option {key!r}; allowed: {names} and model.*")
        return cls.from_mapping(kw).replace(model=model)


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _finite_json(value: Any) -> bool:
    """Whether every number in a JSON value (lists and objects included) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_finite_json, value))
    if isinstance(value, dict):
        return all(map(_finite_json, value.values()))
    return True


def pinn_model(model: Mapping[str, Any], d: int, outputs: int) -> nn.Module:
    """The ``pinn`` model of keywords ``model`` for ``d`` coordinates and ``outputs``
    unknowns, on the meta device (shapes only, no memory): checks the keywords.
    ValueError naming the offending ones."""
    from sciops import models

    try:
        with torch.device("meta"):
            return models.build("pinn", in_channels=d, out_channels=outputs, **model)
    except (TypeError, ValueError, RuntimeError, OverflowError) as e:
        shown = ", ".join(f"model.{k}={v!r}" for k, v in model.items())
        raise ValueError(f"{shown}: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def gp_kron_options(options: Mapping[str, str]) -> Any:
    """gp-kron ``--option`` strings as :class:`sciops.models.gp_kron.GPKronOptions`
    (ValueError naming the field and what is allowed)."""
    from sciops.models.gp_kron import GPKronOptions

    return GPKronOptions.from_mapping(options)


# ----------------------------------------------------------------------------- sampling


def unit_points(n: int, d: int, how: str, seed: int, *, closed: bool = False) -> Tensor:
    """``n`` points in ``[0, 1]^d`` (float64, (n, d)). ``"grid"`` gives ``m^d`` points,
    ``m = round(n^(1/d))``, without the ends (``closed``: with them)."""
    if d == 0:
        return torch.zeros(1, 0, dtype=torch.float64)
    if how == "grid":
        m = max(1, round(n ** (1.0 / d)))
        axis = torch.linspace(0, 1, m, dtype=torch.float64) if closed else \
            torch.linspace(0, 1, m + 2, dtype=torch.float64)[1:-1]
        return torch.cartesian_prod(*[axis] * d).reshape(-1, d)
    if how == "sobol":
        engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
        return engine.draw(n, dtype=torch.float64)
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class CollocationPoints(nn.Module):
    """Interior points ``(N, d)``, one face set ``(N_c, d)`` per penalized condition and the
    count of Adam steps taken, as buffers (saved in checkpoints)."""

    def __init__(self, interior: Tensor, faces: list[Tensor]):
        super().__init__()
        self.register_buffer("interior", interior)
        for k, pts in enumerate(faces):
            self.register_buffer(f"face{k}", pts)
        self.n_faces = len(faces)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def faces(self) -> list[Tensor]:
        return [getattr(self, f"face{k}") for k in range(self.n_faces)]


class CollocationSet(Dataset):
    """``steps`` items, each the current interior point set ``(N, d)``: one epoch of the
    trainer is ``steps`` full-batch Adam steps (train with batch size 1)."""

    def __init__(self, points: CollocationPoints, steps: int):
        self.points, self.steps = points, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int) -> tuple[Tensor]:
        return (self.points.interior,)


# ----------------------------------------------------------------------------- the task


class PhysicsTask:
    """The Task of a physics-informed solve (module docstring)."""

    def __init__(self, problem: Problem, cfg: PinnConfig):
        dom = problem.domain
        self.problem, self.cfg = problem, cfg
        self.names = list(dom.box)
        self.lo = torch.tensor([lo for lo, _ in dom.box.values()], dtype=torch.float64)
        self.hi = torch.tensor([hi for _, hi in dom.box.values()], dtype=torch.float64)
        for c in dom.conditions:
            if c.coord not in dom.box:
                raise ValueError(f"condition {c.name!r}: coordinate {c.coord!r} is not in the "
                                 f"box {self.names}")
        self.in_channels, self.out_channels = len(self.names), len(dom.outputs)
        self.ansatz = self._ansatz() if cfg.bc == "exact" else {}
        self.penalized = [c for c in dom.conditions
                          if not (c.sets and c.sets[0] in self.ansatz)]
        faces = [self._face_points(c, cfg.seed + 1 + k) for k, c in enumerate(self.penalized)]
        self.points = CollocationPoints(self._box_points(cfg.n_interior, cfg.sampling, cfg.seed),
                                        faces)
        self.train_set = CollocationSet(self.points, min(cfg.steps_per_epoch,
                                                         max(cfg.adam_steps, 1)))
        self.eval_points = self._box_points(cfg.eval_points, "sobol", cfg.seed + 10_007)
        exact = problem.sample.exact is not None
        self.metric = "test_rel_l2" if exact else "residual_rms"
        """Name of what :meth:`evaluate` returns (the trainer logs it under this key)."""
        self.metric_label = "test rel. L2 vs exact" if exact else "residual RMS"

    # -- points ---------------------------------------------------------------------------
    def _box_points(self, n: int, how: str, seed: int) -> Tensor:
        return self.lo + (self.hi - self.lo) * unit_points(n, len(self.names), how, seed)

    def _face_points(self, cond: Condition, seed: int) -> Tensor:
        """``n_boundary`` points on the face ``cond.coord == cond.value`` (corners included
        for grids)."""
        i = self.names.index(cond.coord)
        free = [j for j in range(len(self.names)) if j != i]
        u = unit_points(self.cfg.n_boundary, len(free), self.cfg.sampling, seed, closed=True)
        pts = torch.full((u.shape[0], len(self.names)), float(cond.value), dtype=torch.float64)
        pts[:, free] = self.lo[free] + (self.hi[free] - self.lo[free]) * u
        return pts

    def _leaves(self, pts: Tensor, dtype: torch.dtype, grad: bool = True) -> dict[str, Tensor]:
        """Coordinates as separate ``(N,)`` leaf tensors (see :mod:`sciops.autodiff`)."""
        return {n: pts[:, i].detach().to(dtype).clone().requires_grad_(grad)
                for i, n in enumerate(self.names)}

    # -- fields ---------------------------------------------------------------------------
    def _ansatz(self) -> dict[str, tuple[list[tuple[int, float, float]], str | None]]:
        """Per output fixed by Dirichlet conditions: its faces (axis, value, orientation)
        and the data field of the one face with data (None: all zero)."""
        out: dict[str, tuple[list[tuple[int, float, float]], str | None]] = {}
        for o in self.problem.domain.outputs:
            conds = [c for c in self.problem.domain.conditions if c.sets and c.sets[0] == o]
            if not conds:
                continue
            data = [c.sets[1] for c in conds if c.sets[1] is not None]
            if len(data) > 1:
                raise ValueError(f"bc='exact': output {o!r} has data on {len(data)} faces; the "
                                 "ansatz supports one (use bc='soft')")
            faces = []
            for c in conds:
                i = self.names.index(c.coord)
                lo, hi = float(self.lo[i]), float(self.hi[i])
                faces.append((i, float(c.value), (1.0 if c.value <= 0.5 * (lo + hi) else -1.0)
                              / (hi - lo)))
            out[o] = (faces, data[0] if data else None)
        return out

    def fields(self, model: nn.Module, coords: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Known fields and network unknowns (ansatz applied) at ``coords``, each (N,)."""
        x = torch.stack([coords[n] for n in self.names], dim=-1)
        out = model(x)
        given = self.problem.sample.given(coords)
        result = dict(given)
        for j, name in enumerate(self.problem.domain.outputs):
            v = out[:, j]
            if name in self.ansatz:
                faces, data = self.ansatz[name]
                dist = math.prod((coords[self.names[i]] - value) * scale
                                 for i, value, scale in faces)
                v = dist * v + (given[data] if data is not None else 0.0)
            result[name] = v
        return result

    def _residual_loss(self, model: nn.Module, interior: Tensor) -> Tensor:
        # One forward pass over interior and face points together: on small point sets
        # the cost is per call, not per point. Each term then keeps its own rows.
        faces = self.points.faces()
        c = self._leaves(torch.cat([interior, *faces]), next(model.parameters()).dtype)
        fields = self.fields(model, c)
        n = interior.shape[0]
        total = self.problem.residual(fields, c)[:n].square().mean()
        for cond, pts in zip(self.penalized, faces):
            rows = cond.residual(fields, c)[n:n + pts.shape[0]]
            total = total + self.cfg.condition_weight * rows.square().mean()
            n += pts.shape[0]
        return total

    def full_loss(self, model: nn.Module) -> Tensor:
        """The loss on the current interior and face points (L-BFGS's objective)."""
        return self._residual_loss(model, self.points.interior)

    # -- Task protocol --------------------------------------------------------------------
    def state_modules(self) -> dict[str, nn.Module]:
        return {"points": self.points}

    def prepare(self) -> None:
        """Nothing to fit: the points are drawn in the constructor from ``cfg.seed``."""

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        value = self._residual_loss(model, batch[0].reshape(-1, self.in_channels))
        self.points.step += 1
        every = self.cfg.resample_every
        if every and int(self.points.step) % every == 0:
            self.resample(model)
        return value

    def resample(self, model: nn.Module) -> None:
        """RAR-D: redraw the interior points from a uniform pool by residual (module doc)."""
        cfg = self.cfg
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + int(self.points.step))
        pool = self.lo + (self.hi - self.lo) * torch.rand(
            cfg.n_interior * cfg.rar_pool, len(self.names), generator=g, dtype=torch.float64)
        dtype = next(model.parameters()).dtype
        c = self._leaves(pool.to(self.points.interior.device), dtype)
        res = self.problem.residual(self.fields(model, c), c).detach()
        e = res.reshape(res.shape[0], -1).norm(dim=1).double().cpu() ** cfg.rar_k
        p = e / e.mean().clamp_min(1e-300) + cfg.rar_c
        idx = torch.multinomial(p, cfg.n_interior, replacement=False, generator=g)
        self.points.interior.copy_(pool[idx].to(self.points.interior))

    def predict(self, model: nn.Module, pts: Tensor, chunk: int = 65536) -> dict[str, Tensor]:
        """Unknowns at points ``(P, d)`` (box order), float64 on the CPU, each (P,)."""
        dtype = next(model.parameters()).dtype
        device = next(model.parameters()).device
        parts: list[dict[str, Tensor]] = []
        with torch.no_grad():
            for s in range(0, pts.shape[0], chunk):
                c = self._leaves(pts[s:s + chunk].to(device), dtype, grad=False)
                f = self.fields(model, c)
                parts.append({o: f[o].double().cpu() for o in self.problem.domain.outputs})
        return {o: torch.cat([p[o] for p in parts]) for o in self.problem.domain.outputs}

    def evaluate(self, model: nn.Module, device: torch.device) -> float:
        """Relative L2 error against the exact solution on Sobol points (the unknowns it
        gives, jointly); without one, the RMS residual (:attr:`metric` names which)."""
        exact = self.problem.sample.exact
        if exact is None:
            with torch.enable_grad():
                c = self._leaves(self.eval_points.to(device), next(model.parameters()).dtype)
                res = self.problem.residual(self.fields(model, c), c)
            return float(res.detach().square().mean().sqrt())
        pred = self.predict(model, self.eval_points)
        ref = exact(self._leaves(self.eval_points, torch.float64, grad=False))
        keys = [o for o in self.problem.domain.outputs if o in ref]
        num = sum(float((pred[k] - ref[k].detach()).square().sum()) for k in keys)
        den = sum(float(ref[k].detach().square().sum()) for k in keys)
        return math.sqrt(num / max(den, 1e-300))


# ----------------------------------------------------------------------------- solving


@dataclass
class PinnResult:
    """A trained PINN: the model, its task, the losses, timings (seconds) and its final test
    error (``task.metric``: relative L2 vs the exact solution, else the RMS residual)."""

    model: nn.Module
    task: PhysicsTask
    adam_loss: float
    lbfgs_losses: list[float]
    adam_wall_s: float
    lbfgs_wall_s: float
    cpu_s: float
    test_error: float

    def predict(self, pts: Tensor) -> dict[str, Tensor]:
        return self.task.predict(self.model, pts)


def lbfgs(model: nn.Module, task: PhysicsTask, steps: int) -> list[float]:
    """``steps`` L-BFGS iterations (strong Wolfe) on the full loss; the losses evaluated.
    Its line search can step into overflow: if the iteration ends on a non-finite loss, or
    torch's strong-Wolfe search breaks on one, the best weights it evaluated (or those it
    started from) are restored, and the last loss reported is theirs."""
    losses: list[float] = []
    if steps == 0:
        return losses
    best = [math.inf, {k: v.detach().clone() for k, v in model.state_dict().items()}]
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=steps,
                            max_eval=int(1.25 * steps) + 1, history_size=50,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                            tolerance_change=1e-16)

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = task.full_loss(model)
        loss.backward()
        losses.append(float(loss.detach()))
        if losses[-1] < best[0]:
            best[:] = losses[-1], {k: v.detach().clone() for k, v in model.state_dict().items()}
        return loss

    try:
        opt.step(closure)
        finite = math.isfinite(float(task.full_loss(model).detach()))
    except IndexError:  # torch's bracketing indexes an empty bracket after a NaN loss
        finite = False
    if not finite:
        model.load_state_dict(best[1])
        losses.append(float(task.full_loss(model).detach()))
    return losses


def run_config(task: PhysicsTask, cfg: PinnConfig) -> RunConfig:
    """The trainer's config of the Adam phase: the ``pinn`` model sized to the box."""
    dom = task.problem.domain
    model = {"name": "pinn", **cfg.model, "lower": task.lo.tolist(), "upper": task.hi.tolist(),
             "periods": [float(task.hi[i] - task.lo[i]) if n in dom.periodic else None
                         for i, n in enumerate(task.names)]}
    spe = len(task.train_set)
    epochs = max(math.ceil(cfg.adam_steps / spe), 1)  # adam_steps = 0: no Adam phase is run
    train = TrainConfig(epochs=epochs, batch_size=1, lr=cfg.lr, weight_decay=0.0,
                        scheduler=cfg.scheduler, seed=cfg.seed, eval_every=epochs)
    return RunConfig(name="pinn", description="physics-informed solve", model=model,
                     train=train)


def train_pinn(problem: Problem, cfg: PinnConfig, run_dir: str | Path, *,
               device: str | None = None, progress: bool = False) -> PinnResult:
    """Adam (shared trainer, ``run_dir`` gets its log and checkpoints) then L-BFGS; the
    final weights go to ``run_dir/final.pt``. ``metrics.jsonl`` gets the trainer's lines of
    the Adam phase, then one line per L-BFGS loss evaluation (``phase``, ``evaluation``,
    ``loss``), the last one with the final test error and the L-BFGS seconds."""
    task = PhysicsTask(problem, cfg)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    run = run_config(task, cfg)
    trainer = Trainer(run, run_dir, device=device, progress=progress, task=task)
    cpu0, t0 = time.process_time(), time.perf_counter()
    last = trainer.fit(max_steps=cfg.adam_steps) if cfg.adam_steps else {}
    t1 = time.perf_counter()
    model = trainer.model
    losses = lbfgs(model, task, cfg.lbfgs_steps)
    t2 = time.perf_counter()
    cpu = time.process_time() - cpu0
    model.eval()
    checkpoint.save(Path(run_dir) / "final.pt", {
        "model": model.state_dict(), "config": run.to_dict(),
        "task": {k: m.state_dict() for k, m in task.state_modules().items()}})
    error = task.evaluate(model, trainer.ctx.device)
    for k, loss in enumerate(losses, 1):
        end = {task.metric: error, "seconds": round(t2 - t1, 3)} if k == len(losses) else {}
        trainer._log({"phase": "lbfgs", "evaluation": k, "loss": loss, **end})
    return PinnResult(model, task, float(last.get("train_loss", math.nan)), losses, t1 - t0,
                      t2 - t1, cpu, error)


def solve_methods(pde: PDE) -> tuple[str, ...]:
    """The :data:`METHODS` that ``sciops solve`` can apply to ``pde`` (:data:`NEEDS`): ``pinn``
    when its inputs can be evaluated at points and its residual has a pointwise form (checked
    at its default parameters), ``gp-kron`` when it declares a steady ``operator(u, d, p) = f``
    whose side conditions are Dirichlet data on a box without periodic coordinates."""
    pinn = ("pinn",) if pinn_refusal(type(pde)) is None else ()
    return pinn + (("gp-kron",) if _gp_kron_ready(type(pde)) else ())


@functools.cache
def _gp_kron_ready(cls: type[PDE]) -> bool:
    """Whether ``cls`` declares ``operator`` and, at default parameters, a box with Dirichlet
    conditions only (one unknown, no periodic coordinates)."""
    if not callable(getattr(cls, "operator", None)):
        return False
    pde = cls()
    dom = pde.domain(pde.make_params())
    return (len(dom.outputs) == 1 and not dom.periodic and bool(dom.conditions)
            and all(k.sets for k in dom.conditions))


@functools.cache
def pinn_refusal(cls: type[PDE]) -> str | None:
    """Why ``cls`` cannot be solved by a PINN (one line), or None when a sample at default
    parameters has point values, a domain and an autograd residual (evaluated once, at two
    points of the box). The reason is the PDE's own: the message of the first of
    ``domain``, ``point_sample`` and ``residual`` that raises NotImplementedError."""
    pde = cls()
    try:
        params = pde.make_params()
        domain = pde.domain(params)
        inputs = pde.sample_inputs(params, 1, torch.Generator().manual_seed(0))
        sample = pde.point_sample(params, inputs)
        coords = {n: torch.tensor([lo + 0.3 * (hi - lo), lo + 0.6 * (hi - lo)],
                                  dtype=torch.float64, requires_grad=True)
                  for n, (lo, hi) in domain.box.items()}
        wave = torch.sin(sum(coords.values()))
        pde.residual({**sample.given(coords), **{o: wave for o in domain.outputs}}, coords,
                     params)
    except NotImplementedError as e:
        return " ".join(str(e).split()) or type(e).__name__
    return None


def _grid_points(pde: PDE, params: Params, box: list[str]) -> tuple[dict[str, np.ndarray],
                                                                    Tensor, tuple[int, ...]]:
    """The PDE's stored coordinates for the box's axes (by dim name), all grid points
    (P, d) in box order, and the grid shape."""
    coords = pde.coords(params)
    axes = {name: np.asarray(coords[name][1], dtype=np.float64) for name in box}
    mesh = torch.meshgrid(*[torch.as_tensor(axes[n]) for n in box], indexing="ij")
    return axes, torch.stack([m.flatten() for m in mesh], dim=1), tuple(mesh[0].shape)


def _gp_kron(pde: PDE, params: Params, problem: Problem, opts: Any,
             axes: Mapping[str, np.ndarray]) -> Any:
    """``problem`` (a steady PDE's, :func:`_gp_kron_ready`) by the Kronecker GP solver; the
    fitted solver. The residual is the PDE's ``operator(u, d, params) - f`` under the GP's
    derivative provider; the grid is the stored one (``axes``, uniform with the box's ends)
    or ``opts.points`` per axis (``opts``: :func:`gp_kron_options`). The source is the one
    the problem's pointwise residual ``R = operator - f`` implies, ``f = operator(w) - R(w)``
    at any ``w`` (so ``--exact`` sources come with it), by autograd; Dirichlet data are the
    conditions' data fields on their faces (0 where a condition names none)."""
    from sciops.derivatives import AXES, Pointwise
    from sciops.models.gp_kron import KroneckerGPSolver

    dom = problem.domain
    names = list(dom.box)
    for n, (lo, hi) in dom.box.items():
        a = axes[n]
        if not np.allclose(a, np.linspace(lo, hi, len(a)), rtol=0, atol=1e-9 * (hi - lo)):
            raise SciopsError(f"{pde.name}: gp-kron needs a uniform grid with the box's ends; "
                              f"its stored {n} axis is not (set --option points=N)")
    grid = [torch.linspace(lo, hi, opts.points or len(axes[n]), dtype=torch.float64)
            for n, (lo, hi) in dom.box.items()]
    shape = tuple(len(g) for g in grid)
    mesh = torch.meshgrid(*grid, indexing="ij")
    c = {n: m.flatten().clone().requires_grad_() for n, m in zip(names, mesh)}
    given = problem.sample.given(c)
    w = torch.sin(sum(c.values()))
    d = Pointwise({AXES[i]: c[n] for i, n in enumerate(names)}, len(names))
    f = pde.operator(w, d, params) - problem.residual({**given, dom.outputs[0]: w}, c)
    g = torch.zeros(shape, dtype=torch.float64)
    faces = [[False, False] for _ in names]
    for k in dom.conditions:
        i, hi = names.index(k.coord), k.value == dom.box[k.coord][1]
        faces[i][hi] = True
        data = given[k.sets[1]].detach().reshape(shape) if k.sets[1] else torch.zeros(shape)
        g.select(i, -1 if hi else 0).copy_(data.select(i, -1 if hi else 0))
    solver = KroneckerGPSolver(lambda u, d, f: pde.operator(u, d, params) - f,
                               list(dom.box.values()), shape, data_faces=faces,
                               n_components=opts.n_components, kernel=opts.kernel)
    solver.fit(f.detach().reshape(shape), g, steps=opts.steps, lr=opts.lr,
               lbfgs_steps=opts.lbfgs_steps)
    return solver


def _reference(pde: PDE, params: Params, inputs: Mapping[str, Tensor], sample: PointSample,
               box: list[str], mesh: Tensor, shape: tuple[int, ...]
               ) -> tuple[str, dict[str, Tensor]]:
    """What the solution is compared with, and its fields on the stored grid (``shape``, box
    order, float64): the instance's exact solution, else the PDE's own solver."""
    if sample.exact is not None:
        exact = sample.exact({n: mesh[:, i] for i, n in enumerate(box)})
        return "exact solution", {k: v.double().reshape(shape) for k, v in exact.items()}
    try:
        out = pde.solve(params, inputs)
    except SolverDiverged as e:
        raise SciopsError(f"{pde.name}: its reference solver failed: {e}") from None
    dims = [pde.coords(params)[n][0] for n in box]
    ref = {}
    for name, value in out.items():
        var_dims = list(pde.variables[name].dims[1:])  # without "sample"
        if sorted(var_dims) == sorted(dims):
            ref[name] = value[0].double().permute([var_dims.index(d) for d in dims])
    return f"{pde.name} reference solver", ref


def _figure(path: Path, pred: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray],
            dims: list[str], axes: list[np.ndarray], title: str) -> None:
    """One row per unknown: solution and reference (one colour scale), their difference (its
    own scale). Over ``time`` and space the last record is shown, in 3-D space the middle
    slice of the last axis; fields left with one axis are line plots."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    index: list[int | slice] = [slice(None)] * len(dims)
    notes = []
    if dims[0] == "time" and len(dims) > 2:
        index[0] = -1
        notes.append(f"t = {axes[0][-1]:.3g}")
    if len(dims) - (dims[0] == "time" and len(dims) > 2) > 2:
        index[-1] = len(axes[-1]) // 2
        notes.append(f"{dims[-1]} = {axes[-1][index[-1]]:.3g}")
    shown = [a for a, i in enumerate(index) if isinstance(i, slice)]
    fig, grid = plt.subplots(len(pred), 3, figsize=(10, 2.8 * len(pred)), squeeze=False,
                             constrained_layout=True)
    for row, name in zip(grid, pred):
        u = pred[name][tuple(index)]
        panels = [(u, f"{name}")]
        if name in ref:
            r = ref[name][tuple(index)]
            panels += [(r, f"{name} reference"), (u - r, f"{name} - reference")]
        lo = min(float(v.min()) for v, _ in panels[:2])
        hi = max(float(v.max()) for v, _ in panels[:2])
        for k, (ax, (values, label)) in enumerate(zip(row, panels)):
            same = k < 2  # solution and reference share a scale; the error has its own
            if len(shown) == 1:
                ax.plot(axes[shown[0]], values, lw=1)
                ax.set_xlabel(dims[shown[0]])
                if same and hi > lo:
                    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            else:
                top = float(np.abs(values).max()) or 1.0
                lim = (lo, hi) if same else (-top, top)
                im = ax.pcolormesh(axes[shown[1]], axes[shown[0]], values, shading="nearest",
                                   cmap="RdBu_r", vmin=lim[0], vmax=lim[1])
                ax.set_xlabel(dims[shown[1]])
                ax.set_ylabel(dims[shown[0]])
                fig.colorbar(im, ax=ax, shrink=0.85)
            ax.set_title(label, fontsize=9)
        for ax in row[len(panels):]:
            ax.axis("off")
    fig.suptitle(title + (f" ({', '.join(notes)})" if notes else ""), fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _check_memory(pde: PDE, params: Params, domain: Domain, cfg: PinnConfig | None) -> None:
    """Refuse (SciopsError) a solve that cannot fit the available memory: one sample of the
    PDE's own solver (inputs, reference; the generation estimate of
    :func:`sciops.data.sizing.estimate`) plus, for a PINN, :meth:`PinnConfig.hidden_bytes`."""
    from sciops.data import sizing
    from sciops.data.recipes import Recipe

    one = sizing.estimate(Recipe(pde.name, pde.name, params, samples=1, samples_per_shard=1,
                                 batch_size=1))
    pinn = cfg.hidden_bytes(len(domain.box), len(domain.outputs)) if cfg else 0
    grid = ", ".join(f"{k}={v}" for k, v in params.to_dict().items()
                     if k in ("resolution", "output_resolution", "n_records") and v is not None)
    sizing.require_memory(one.batch_bytes + pinn, f"solve {pde.name}: {grid or 'the instance'}"
                          + (" and the PINN options" if cfg else "") + " need",
                          "lower them with --set/--option")


EVAL_POINTS = {1: 257, 2: 65, 3: 33}
"""Default ``--eval-points`` per axis of a manufactured solve, by box dimension (else 17)."""
MAX_EVAL_POINTS = 2**20
"""Most points of that grid (its residual check and the predictions there: ~1.1 GB at 1024²)."""


def _manufactured(problem: Problem, text: str, eval_points: int | None
                  ) -> tuple[Problem, list[Tensor], Tensor]:
    """The problem of the ``--exact`` text (:meth:`Problem.manufactured`), the axes of the
    uniform evaluation grid (ends included, box order) and its points ``(P, d)``. SciopsError when
    u* or its residual is not finite on that grid or u* is not periodic where the box is."""
    from sciops.expression import compile_fields

    dom = problem.domain
    exact = compile_fields(text, list(dom.box), dom.outputs)
    n = eval_points or EVAL_POINTS.get(len(dom.box), 17)
    if not 2 <= n or n ** len(dom.box) > MAX_EVAL_POINTS:
        top = math.floor(MAX_EVAL_POINTS ** (1 / len(dom.box)) + 1e-9)
        raise SciopsError(f"--eval-points {n}: allowed 2 to {top} "
                          f"points per axis for the {len(dom.box)} coordinates "
                          f"{', '.join(dom.box)}")
    axes = [torch.linspace(lo, hi, n, dtype=torch.float64) for lo, hi in dom.box.values()]
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
    c = {k: mesh[..., i].flatten().clone().requires_grad_() for i, k in enumerate(dom.box)}
    u = exact(c)
    source = problem.residual({**problem.sample.given(c), **u}, c)
    for name, value in {**u, "its residual (the source)": source}.items():
        if not torch.isfinite(value).all():
            raise SciopsError(f"--exact {text!r}: {name} is not finite on the grid of {n} "
                              f"points per axis of the box {dom.box}")
    for i, k in enumerate(dom.box):
        if k in dom.periodic:
            ends = [u[o].detach().reshape(mesh.shape[:-1]).select(i, j) for o in u for j in (0, -1)]
            gap = max(float((a - b).abs().max()) for a, b in zip(ends[::2], ends[1::2]))
            if gap > 1e-6 * max(float(v.detach().abs().max()) for v in u.values()):
                raise SciopsError(f"--exact {text!r} is not periodic in {k} (period "
                                  f"{dom.box[k][1] - dom.box[k][0]:g}, ends differ by {gap:.3g}); "
                                  f"the PDE is periodic in {', '.join(dom.periodic)}")
    return problem.manufactured(exact), axes, mesh.reshape(-1, len(dom.box))


def solve_instance(pde_name: str, overrides: Mapping[str, str], method: str,
                   out: str | Path, *, seed: int = 0, options: Mapping[str, str] | None = None,
                   device: str | None = None, progress: bool = False,
                   exact: str | None = None, eval_points: int | None = None) -> dict[str, Any]:
    """Solve sample ``seed`` of a PDE with ``method``; write into ``out``: ``solution.nc``
    (unknowns and reference on the PDE's stored grid, netCDF), ``solution.png`` (solution,
    reference, error) and ``summary.json``; a PINN's run (log, checkpoints) in ``out/run``.

    Returns the summary: ``reference`` (the exact solution where the instance has one, else
    the PDE's reference solver on the same grid), ``rel_l2`` per unknown against it on the
    stored grid, wall and CPU seconds of the method, and the ``files`` written.

    ``exact``: a manufactured solution u* (:func:`sciops.expression.compile_fields`) in the
    coordinates of the PDE's box; the instance's sources and side data are replaced by those
    of u* (:meth:`Problem.manufactured`; its coefficients stay) and ``rel_l2`` is against u*
    on a uniform grid of ``eval_points`` per axis (:data:`EVAL_POINTS`), ``eval_grid``.
    """
    import xarray as xr

    if method not in METHODS:
        raise SciopsError(f"--method {method!r} is not allowed; choose one of {list(METHODS)}")
    options = dict(options or {})
    try:
        pde = pdes.get(pde_name)
    except KeyError as e:
        raise SciopsError(str(e.args[0])) from None
    supported = solve_methods(pde)
    if method not in supported:
        why = f": {pinn_refusal(type(pde))}" if method == "pinn" else ""
        raise SciopsError(f"{pde_name} cannot be solved by --method {method} (it needs "
                          f"{NEEDS[method]}{why}); {pde_name} supports "
                          f"{', '.join(supported) or 'no solve method'} (see `sciops list pdes`)")
    if not 0 <= seed < 2**63:
        raise SciopsError(f"--seed {seed} is out of range; allowed [0, 2**63)")
    if eval_points is not None and exact is None:
        raise SciopsError("--eval-points needs --exact (the error against an expression)")
    try:
        cfg = PinnConfig.from_options(options) if method == "pinn" else None
        gp_opts = gp_kron_options(options) if method == "gp-kron" else None
    except ValueError as e:
        raise SciopsError(f"--option {e.args[0]}") from None
    try:
        params = pde.make_params(overrides)
        domain = pde.domain(params)
        _check_memory(pde, params, domain, cfg)
        inputs = pde.sample_inputs(params, 1, torch.Generator().manual_seed(seed))
        sample = pde.point_sample(params, inputs)
    except (KeyError, ValueError) as e:
        raise SciopsError(f"{pde_name}: {e.args[0]}") from None
    problem = Problem.from_pde(pde, params, sample)
    if exact is not None:
        problem, fine_axes, fine = _manufactured(problem, exact, eval_points)
        sample = problem.sample
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    box = list(domain.box)
    axes, mesh, shape = _grid_points(pde, params, box)
    wall, cpu = time.perf_counter(), time.process_time()
    if method == "pinn":
        try:
            result = train_pinn(problem, cfg, out / "run", device=device, progress=progress)
        except ValueError as e:  # the bc='exact' ansatz cannot take the problem's data
            raise SciopsError(f"{pde_name}: {e.args[0]}") from None
        pred = result.predict(mesh)
    else:
        solver = _gp_kron(pde, params, problem, gp_opts, axes)
        pred = {"u": solver.predict_grid([torch.as_tensor(axes[n]) for n in box]).flatten()}
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bad = [name for name, value in pred.items() if not torch.isfinite(value).all()]
    if bad:
        raise SciopsError(f"{pde_name}: the {method} solution of {', '.join(bad)} is not "
                          "finite (the solve diverged); lower --option lr or change the budget")
    reference, ref = _reference(pde, params, inputs, sample, box, mesh, shape)
    dims = [pde.coords(params)[n][0] for n in box]
    data, errors = {}, {}
    pred = {name: value.reshape(shape) for name, value in pred.items()}
    for name, value in pred.items():
        data[name] = (dims, value.numpy())
        if name in ref:
            data[f"{name}_reference"] = (dims, ref[name].numpy())
            errors[name] = float((value - ref[name]).norm() / ref[name].norm())
    files = ["solution.nc", "solution.png", "summary.json"] + (["run/"] if method == "pinn"
                                                              else [])
    extra: dict[str, Any] = {}
    if exact is not None:
        got = (result.predict(fine) if method == "pinn"
               else {"u": solver.predict_grid(fine_axes).flatten()})
        want = sample.exact({n: fine[:, i] for i, n in enumerate(box)})
        errors = {k: float((got[k] - want[k]).norm() / want[k].norm()) for k in want}
        fine_shape = [len(a) for a in fine_axes]
        reference = f"manufactured solution {exact!r} on {'x'.join(map(str, fine_shape))} points"
        extra = {"exact": exact, "eval_grid": fine_shape}
    summary = {"pde": pde_name, "method": method, "seed": seed, "params": params.to_dict(),
               "options": options, "grid": list(shape), "reference": reference,
               "rel_l2": errors, **extra, "wall_s": wall, "cpu_s": cpu, "files": files}
    ds = xr.Dataset(data, coords={d: axes[n] for d, n in zip(dims, box)},
                    attrs={"summary": json.dumps(summary)})
    ds.to_netcdf(out / "solution.nc", engine="h5netcdf")
    _figure(out / "solution.png", {k: v.numpy() for k, v in pred.items()},
            {k: v.numpy() for k, v in ref.items()}, dims, [axes[n] for n in box],
            f"{pde_name} by {method}, seed {seed}; reference: {reference}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
