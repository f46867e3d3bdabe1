"""PINO / LESnets: a neural operator trained with the Smagorinsky LES equations of ``les3d``.

The model (the registry's 3D ``fno``, ``in_channels=3``, ``out_channels=3 K``) maps the LES
velocity ``u0`` at ``t0`` to the velocities at ``t0 + k dt``, ``k = 1..K``:

    u_k = P[u0 + k dt G N_k(u0 / U)],

``N`` the network output read as K mean tendencies in units of ``G`` (the ``k dt`` factor
lets one output scale serve every k and makes the untrained model start near persistence),
``U`` and ``G`` the rms velocity and LES tendency per component of the training inputs
(fitted by ``prepare``, stored in checkpoints), and ``P`` the Leray projection onto
divergence-free fields of the LES band (the 2/3-rule cube ``|m_i| <= n/3``), the space the
LES solution lives in: the network need not learn it.

Physics loss (LESnets, Zhao et al. 2024, arXiv:2411.04502): the mean squared LES residual of
:meth:`LES3D.residual <sciops.pdes.les3d.LES3D.residual>` over the stack ``[u0, u_1..u_K]``
(second-order finite differences in time), restricted to the LES band, divided by the mean
square of the tendency ``du/dt`` at ``u0``. Restricting to the band makes the loss the
Galerkin residual the LES solver zeroes, so it vanishes on solver frames up to the time
differencing (it would not without the restriction: the nonlinear term of a band-limited
field has modes outside the band). Its scale: persistence (``u_k = u0``) scores 1. The
optional data term is the squared error of the increments ``u_k - u0`` relative to those of
the labels (persistence scores 1 there too):

    loss = physics_weight * physics + data_weight * data.

Training inputs (``inputs``):

* ``"rollout"`` (physics only, no solved data): a pool of ``n_train`` fields that starts as
  random LES initial fields (:func:`~sciops.pdes.les3d.hit_field`) and follows the model's
  own predictions: after a training step, a field whose prediction has physics loss below
  ``rollout_tol`` is replaced by that prediction's last frame, so the inputs cover the decay
  the model will roll out over; a field whose prediction fails, or whose next window would
  pass ``t_max``, restarts from a fresh random field (an endless supply of inputs). The pool
  is a checkpointed module (exact resume); under DDP each rank advances its own copy and
  rank 0's is saved.
* ``"solver"``: windows of LES solver trajectories over ``[0, t_max]`` from ``n_train``
  random initial fields (the labels of the data term), solved when the task is built.

The test error (logged as ``test_rel_l2``) is the relative L2 error of the K predicted
frames against the LES solver over non-overlapping windows of ``n_test`` held-out
trajectories. The CLI's ``sciops train`` builds the supervised task only; run this one with
``Trainer(cfg, run_dir, task=PinoTask(params, PinoConfig(...)))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from sciops import pdes, spectral
from sciops.pdes import les3d
from sciops.pdes.les3d import LES3DParams
from sciops.train.losses import rel_lp

__all__ = ["PinoConfig", "PinoTask", "InputPool", "Scales", "les_operators", "tendency_hat",
           "residual_hat", "band_mean_square", "physics_loss", "seeded_fields",
           "solver_trajectories", "stream_seed", "TRAIN", "TEST"]

INPUTS = ("rollout", "solver")


@dataclass(frozen=True)
class PinoConfig:
    """Options of a PINO / LESnets task (defaults documented once, here)."""

    n_steps: int = 4
    """K, frames predicted per model call."""
    dt: float = 0.1
    """Time between frames (time units)."""
    physics_weight: float = 1.0
    data_weight: float = 0.0
    """0: physics only (LESnets); > 0 needs ``inputs="solver"`` (labels)."""
    inputs: str = "rollout"
    """'rollout' (random fields followed by the model's own predictions) or 'solver'."""
    n_train: int = 16
    """Pool size ('rollout') or number of training trajectories ('solver')."""
    n_test: int = 1
    """Held-out solver trajectories for the test error (0: none)."""
    t_max: float = 4.0
    """End of the decay the inputs cover (time units)."""
    rollout_tol: float = 1.0
    """'rollout': a prediction with physics loss below this replaces its input, one above
    restarts it from a fresh random field (1: worse than persistence)."""
    seed: int = 0
    """Seed of the random initial fields (train and test draw from disjoint streams)."""

    def __post_init__(self) -> None:
        for name in ("n_steps", "n_train"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} is out of range; allowed [1, inf)")
        for name in ("physics_weight", "data_weight", "n_test", "seed", "rollout_tol"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} is out of range; allowed [0, inf)")
        if not self.dt > 0:
            raise ValueError(f"dt={self.dt} is out of range; allowed (0, inf)")
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs={self.inputs!r} is not allowed; choose one of {list(INPUTS)}")
        if self.physics_weight == 0 and self.data_weight == 0:
            raise ValueError("physics_weight=0 and data_weight=0: the loss would be 0; set one > 0")
        if self.data_weight > 0 and self.inputs != "solver":
            raise ValueError(f"data_weight={self.data_weight} needs labels: set inputs='solver'")
        if self.t_max < self.n_steps * self.dt - 1e-9:
            raise ValueError(f"t_max={self.t_max} is out of range; allowed "
                             f"[n_steps * dt = {self.n_steps * self.dt:g}, inf)")

    @property
    def n_records(self) -> int:
        """Frames after t = 0 of a trajectory over ``[0, t_max]``."""
        return round(self.t_max / self.dt)


# -- the LES residual on spectral stacks ---------------------------------------------------

def les_operators(params: LES3DParams, device: torch.device,
                  dtype: torch.dtype = torch.float32) -> les3d._Operators:
    """The les3d operators of the ``resolution³`` grid with the model of ``params.mode``."""
    n = params.resolution
    return pdes.get("les3d").operators(params, n, params.mode == "les", device, dtype)


def _forcing_hat(ops: les3d._Operators, u: Tensor, u_hat: Tensor) -> Tensor:
    """Spectral ``u x w + div(2 nu_t S)`` of physical ``u`` (B, 3, n, n, n) and its spectrum
    (les3d's model forcing, differentiable)."""
    return les3d._model_forcing(ops, u, ops.velocity_gradient(u_hat), ops.model_coef)[0]


def tendency_hat(ops: les3d._Operators, u_hat: Tensor) -> Tensor:
    """LES tendency ``P[u x w + div(2 nu_t S)] + nu Laplacian(u)`` (no dealiasing: the PDE
    itself) of spectral fields ``u_hat`` (B, 3, n, n, n//2+1), same shape, in length/time²
    (times ``n³``, the unnormalized FFT)."""
    f_hat = _forcing_hat(ops, ops.physical(u_hat), u_hat)
    return ops.project(f_hat) - ops.nu * ops.k2 * u_hat


def residual_hat(ops: les3d._Operators, u_hat: Tensor, dt: float) -> tuple[Tensor, Tensor]:
    """LES residual ``du/dt - tendency`` of a stack of spectral frames ``u_hat``
    (B, T, 3, n, n, n//2+1) spaced ``dt`` (T >= 3), and the tendency; both of that shape.
    ``du/dt``: second-order differences, as les3d's residual.

    In the LES band the residual equals the spectrum of :meth:`LES3D.residual`; outside it,
    it is meaningless (use :func:`band_mean_square`, which keeps the band only).
    """
    rhs = tendency_hat(ops, u_hat.flatten(0, 1)).view_as(u_hat)
    dudt = torch.gradient(u_hat, spacing=dt, dim=1, edge_order=2)[0]
    return dudt - rhs, rhs


def band_mean_square(ops: les3d._Operators, x_hat: Tensor) -> Tensor:
    """Grid mean of ``|x|²`` summed over the 3 components, of the LES band of spectral vector
    fields ``x_hat`` (..., 3, n, n, n//2+1): shape (...), by Parseval."""
    power = x_hat.real.square() + x_hat.imag.square()
    return (power * ops.weight).flatten(-4).sum(-1) / ops.n**6


def physics_loss(ops: les3d._Operators, stack_hat: Tensor, dt: float) -> Tensor:
    """Per-sample PINO loss (B,): band mean square of the residual over the frames of
    ``stack_hat`` (B, T, 3, n, n, n//2+1), divided by that of the tendency at frame 0."""
    r, rhs = residual_hat(ops, stack_hat, dt)
    scale = band_mean_square(ops, rhs[:, 0]).detach()
    return band_mean_square(ops, r).mean(1) / scale.clamp_min(torch.finfo(scale.dtype).tiny)


# -- inputs -----------------------------------------------------------------------------------

def seeded_fields(params: LES3DParams, seeds: list[int]) -> Tensor:
    """Random LES initial fields ``(len(seeds), 3, m, m, m)`` (``m = input_resolution``, dtype
    of ``params``), field ``i`` drawn by :meth:`LES3D.sample_inputs` from seed ``seeds[i]``,
    so a field does not depend on which others are drawn with it."""
    pde = pdes.get("les3d")
    return torch.cat([pde.sample_inputs(params, 1, torch.Generator().manual_seed(s))["u0"]
                      for s in seeds])


def stream_seed(seed: int, stream: int, index: int) -> int:
    """Independent seeds per ``(seed, stream, index)``; the task draws training fields from
    stream ``TRAIN`` and test fields from ``TEST``, so other streams stay disjoint from both."""
    return int(np.random.SeedSequence((seed, stream, index)).generate_state(1)[0])


TRAIN, TEST = 0, 1


class InputPool(nn.Module):
    """Physics-only training inputs: ``fields`` (N, 3, n, n, n), each one's ``time`` since its
    random start (N,) and the number of random fields drawn so far ``draws`` (seeds)."""

    def __init__(self, fields: Tensor):
        super().__init__()
        self.register_buffer("fields", fields.float())
        self.register_buffer("time", torch.zeros(len(fields), dtype=torch.float64))
        self.register_buffer("draws", torch.tensor(len(fields)))


class Scales(nn.Module):
    """Model units: rms ``velocity`` (length/time) and LES ``tendency`` (length/time²) per
    component of the training inputs (scalar buffers)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("velocity", torch.tensor(1.0))
        self.register_buffer("tendency", torch.tensor(1.0))

    @torch.no_grad()
    def fit(self, ops: les3d._Operators, u0: Tensor) -> Scales:
        """From inputs ``u0`` (B, 3, n, n, n) in the LES band."""
        u_hat = spectral.rfft(u0, 3)
        self.velocity.copy_(band_mean_square(ops, u_hat).mean().div(3).sqrt())
        self.tendency.copy_(band_mean_square(ops, tendency_hat(ops, u_hat)).mean().div(3).sqrt())
        return self


class _PoolItems(Dataset):
    """``items[i] -> (i, pool.fields[i])`` (the pool's current field, read at access)."""

    def __init__(self, pool: InputPool):
        self.pool = pool

    def __len__(self) -> int:
        return len(self.pool.fields)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return torch.tensor(i), self.pool.fields[i]


class _Windows(Dataset):
    """``windows[i] -> (i, u(t_s), u(t_s + dt .. t_s + K dt))`` of solver trajectories
    (S, T, 3, n, n, n), every start ``s`` in ``starts``."""

    def __init__(self, trajectories: Tensor, n_steps: int, starts: list[int]):
        self.traj, self.k, self.starts = trajectories, n_steps, starts

    def __len__(self) -> int:
        return len(self.traj) * len(self.starts)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        j, w = divmod(i, len(self.starts))
        s = self.starts[w]
        return torch.tensor(i), self.traj[j, s], self.traj[j, s + 1:s + 1 + self.k]


def solver_trajectories(params: LES3DParams, u0: Tensor, t_final: float, n_records: int
                        ) -> Tensor:
    """LES solver velocities ``(B, n_records + 1, 3, n, n, n)`` on ``[0, t_final]`` from ``u0``
    (B, 3, n, n, n), in the dtype of ``params``."""
    q = params.replace(t_final=t_final, n_records=n_records, store_fdns=False)
    out = pdes.get("les3d").solve(q, {"u0": u0})
    return torch.stack([out[c] for c in "uvw"], dim=2)


# -- the task ---------------------------------------------------------------------------------

class PinoTask:
    """Trainer task of a PINO / LESnets on ``les3d`` (see the module docstring).

    ``params``: the LES (``ic='hit'``, no fDNS); its ``resolution`` is the grid of the model,
    which must map ``(B, 3, n, n, n) -> (B, 3 K, n, n, n)`` (the trainer builds it from the
    run's ``[model]`` with these channel counts). The run's ``[data]``, ``train.loss`` and
    ``train.amp`` are not used: the loss is the one above, in float32.
    """

    def __init__(self, params: LES3DParams, options: PinoConfig):
        if params.ic != "hit" or params.store_fdns:
            raise ValueError(f"params: the PINO task needs ic='hit' and store_fdns=False, got "
                             f"ic={params.ic!r}, store_fdns={params.store_fdns}")
        self.params, self.options = params.replace(dtype="float32"), options
        self.in_channels, self.out_channels = 3, 3 * options.n_steps
        self._ops: dict[torch.device, les3d._Operators] = {}
        o = options
        self._train_u0 = seeded_fields(self.params,
                                       [stream_seed(o.seed, TRAIN, i) for i in range(o.n_train)])
        self.scales = Scales()
        self.pool: InputPool | None = None
        if o.inputs == "rollout":
            self.pool = InputPool(self._train_u0)
            self.train_set: Dataset = _PoolItems(self.pool)
        else:
            traj = solver_trajectories(self.params, self._train_u0, o.t_max, o.n_records)
            self.train_set = _Windows(traj, o.n_steps, list(range(o.n_records - o.n_steps + 1)))
        self.test_set: _Windows | None = None
        if o.n_test:
            test_u0 = seeded_fields(self.params,
                                    [stream_seed(o.seed, TEST, i) for i in range(o.n_test)])
            traj = solver_trajectories(self.params, test_u0, o.t_max, o.n_records)
            self.test_set = _Windows(traj, o.n_steps,
                                     list(range(0, o.n_records - o.n_steps + 1, o.n_steps)))

    def ops(self, device: torch.device) -> les3d._Operators:
        """The LES operators (float32) on ``device``, built once per device."""
        if device not in self._ops:
            self._ops[device] = les_operators(self.params, device)
        return self._ops[device]

    def state_modules(self) -> dict[str, nn.Module]:
        return {"scales": self.scales, **({} if self.pool is None else {"pool": self.pool})}

    def prepare(self) -> None:
        """Fit the model units to the random initial fields of the training set."""
        self.scales.fit(self.ops(torch.device("cpu")), self._train_u0)

    # -- prediction ---------------------------------------------------------------------------
    def predict_hat(self, model: nn.Module, u0: Tensor) -> tuple[Tensor, Tensor]:
        """Spectral stack ``[P u0, u_1..u_K]`` (B, K + 1, 3, n, n, n//2+1) from physical
        ``u0`` (B, 3, n, n, n), and the model's frames in physical space (B, K, 3, n, n, n)."""
        ops, k, dt = self.ops(u0.device), self.options.n_steps, self.options.dt
        b, space = u0.shape[0], u0.shape[2:]
        steps = dt * torch.arange(1, k + 1, dtype=u0.dtype, device=u0.device)
        out = model(u0 / self.scales.velocity).view(b, k, 3, *space)
        incr = out * (self.scales.tendency * steps).view(1, k, 1, 1, 1, 1)
        u0_hat = ops.project(spectral.rfft(u0, 3))
        frames = u0_hat[:, None] + ops.project(spectral.rfft(incr.flatten(0, 1), 3)).view(
            b, k, *u0_hat.shape[1:])
        stack = torch.cat([u0_hat[:, None], frames], 1)
        return stack, ops.physical(frames.flatten(0, 1)).view(b, k, 3, *space)

    @torch.no_grad()
    def rollout(self, model: nn.Module, u0: Tensor, n_calls: int) -> Tensor:
        """Autoregressive prediction ``(B, 1 + n_calls K, 3, n, n, n)`` at ``t0 + j dt``:
        ``u0`` (B, 3, n, n, n) first, then each call's K frames, the last fed back."""
        frames = [u0]
        for _ in range(n_calls):
            frames.extend(self.predict_hat(model, frames[-1])[1].unbind(1))
        return torch.stack(frames, 1)

    # -- training -----------------------------------------------------------------------------
    def sample_losses(self, model: nn.Module, batch: tuple[Tensor, ...]
                      ) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample (B,) total, physics and data losses, and the predicted frames."""
        _, u0, *labels = batch
        o, ops = self.options, self.ops(u0.device)
        stack, frames = self.predict_hat(model, u0)
        zero = u0.new_zeros(len(u0))
        physics = physics_loss(ops, stack, o.dt) if o.physics_weight else zero
        data = zero
        if o.data_weight:
            y_hat = spectral.rfft(labels[0], 3)
            err = band_mean_square(ops, stack[:, 1:] - y_hat).sum(1)
            ref = band_mean_square(ops, y_hat - stack[:, :1]).sum(1)
            data = err / ref.clamp_min(torch.finfo(ref.dtype).tiny)
        return o.physics_weight * physics + o.data_weight * data, physics, frames

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        """Mean over the batch of the per-sample loss; with ``inputs='rollout'`` also advances
        the pool (see the module docstring)."""
        total, physics, frames = self.sample_losses(model, batch)
        if self.pool is not None:
            self._advance(batch[0], frames[:, -1].detach(), physics.detach())
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
            fresh = seeded_fields(self.params, [stream_seed(o.seed, TRAIN, draw)])[0]
            pool.fields[i] = fresh.to(pool.fields)
            pool.time[i] = 0.0
            pool.draws += 1

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> float:
        """Mean relative L2 error of the K frames against the LES solver over the test windows
        (NaN without test trajectories)."""
        if self.test_set is None:
            return math.nan
        errors = []
        for i in range(len(self.test_set)):
            _, u0, y = self.test_set[i]
            frames = self.predict_hat(model, u0[None].to(device))[1]
            errors.append(float(rel_lp(frames, y[None].to(device))))
        return sum(errors) / len(errors)
