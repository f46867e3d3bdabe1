"""Particle task: learn Lagrangian dynamics (GNS / GIOROM) from stored particle trajectories.

Data: a particle dataset (dims ``sample, time, particle, dim``: ``position`` in m and
``material`` ids, as written by ``mpm2d``). A training item is a window of ``H + 2``
consecutive positions (``H = data.in_steps`` velocities of history, as GNS's 5) and the
materials. Velocities and accelerations are finite differences per record,
``v_t = x_t - x_{t-1}`` and ``a_t = x_{t+1} - 2 x_t + x_{t-1}`` (m per record), so a
prediction advances positions by ``x_{t+1} = x_t + v_t + a_t`` exactly as the targets were
formed.

Model inputs per particle (``in_channels = H d + 2 d + M``): the H standardized velocities,
distances to the 2d walls divided by ``wall_scale`` and clipped to [0, 1], and the material
one-hot over the ``M`` materials the dataset's PDE declares (its ``materials``: names of the
ids ``0..M-1``, e.g. ``mpm2d``'s water, elastic, sand), found through the PDE registry from
the manifest, so this module imports no PDE family. The model outputs the standardized
acceleration. Training follows GNS: random-walk noise of standard deviation ``noise_std``
(m, at the last step) is added to the input positions, and the target is corrected for the
velocity noise (not for the position noise), so the model learns to undo the drift of its
own rollouts; the loss is the MSE of the standardized acceleration. Statistics (from the
training split, with the noise variance added as GNS does) are stored in checkpoints.

Config mapping: ``data.in_steps`` is H, ``data.out_steps`` the evaluation rollout length,
``data.windows`` / ``window_stride`` / ``train_samples`` / ``test_samples`` as for grids;
``data.inputs`` / ``targets`` and ``train.loss`` are not used (the task reads ``position``
and ``material``; the loss is always the MSE above).

The test error (``metric``: logged as ``test_position_mse``, in m²) is the mean squared
position error of rollouts of
``data.out_steps`` steps, started after the first H + 1 records of each test sample,
averaged over steps and particles. A model with ``select_nodes``
(GIOROM) rolls out reduced-order: its graph nodes are chosen once at the start, the
processor sees only their history, and every particle moves with the accelerations the
model evaluates at its position.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from sciops import pdes
from sciops.data import open_samples
from sciops.data.store import read_manifest
from sciops.errors import SciopsError
from sciops.models.graph import gather_points
from sciops.train.config import RunConfig
from sciops.train.task import Normalizer, check_split, resolve_dataset, split_ranges


class ParticleWindows(Dataset):
    """``windows[i] -> (position (H + 2, N, d), material (N,))`` in float32 / int64."""

    def __init__(self, store: Dataset, samples: range, span: int, starts: list[int]):
        self.store, self.samples, self.span, self.starts = store, samples, span, starts

    def __len__(self) -> int:
        return len(self.samples) * len(self.starts)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        k, w = divmod(i, len(self.starts))
        item = self.store[self.samples[k]]
        s = self.starts[w]
        return item["position"][s:s + self.span], item["material"].long()


def random_walk_noise(shape: tuple[int, ...], std: float, *, dtype: torch.dtype,
                      device: torch.device) -> Tensor:
    """Position noise (B, H + 1, N, d) whose velocities are a random walk over H steps with
    standard deviation ``std`` at the last step; zero at the first frame (GNS)."""
    B, frames, N, d = shape
    steps = frames - 1
    velocity = torch.randn(B, steps, N, d, dtype=dtype, device=device) * (std / math.sqrt(steps))
    position = torch.cumsum(torch.cumsum(velocity, 1), 1)
    return torch.cat([position.new_zeros(B, 1, N, d), position], 1)


class ParticleTask:
    """Trainer task for ``kind = "particle"`` models (``gns``, ``giorom``) on a particle
    dataset (module docstring).

    ``noise_std``: input noise (m) at the last history step; ``wall_scale``: distance (m)
    at which wall features saturate.
    """

    metric, metric_label = "test_position_mse", "test position MSE (m²)"

    def __init__(self, cfg: RunConfig, *, noise_std: float = 3e-4, wall_scale: float = 0.05):
        if noise_std < 0 or not wall_scale > 0:
            raise ValueError(f"noise_std={noise_std} must be >= 0 and wall_scale={wall_scale} > 0")
        self.cfg = cfg
        self.noise_std, self.wall_scale = noise_std, wall_scale
        path = resolve_dataset(cfg.data.dataset)
        recipe = read_manifest(path)["recipe"]
        pde = pdes.get(recipe["pde"])
        params = pde.make_params(recipe["params"])
        if not getattr(pde, "materials", None):
            raise SciopsError(f"{path}: PDE {recipe['pde']} declares no particle `materials` "
                              f"(the names of its material ids), which the particle task needs")
        self.n_materials = len(pde.materials)
        if getattr(params, "boundary", "walls") != "walls":
            raise SciopsError(f"{path}: the particle task needs a walled box, not "
                              f"boundary={params.boundary!r}")
        self.walls = params.walls
        self.store = open_samples(path, ["position", "material"])
        check_split(path, len(self.store), cfg.data)
        train_range, test_range = split_ranges(cfg.data)
        self.history = cfg.data.in_steps
        self.rollout_steps = cfg.data.out_steps
        n_times, _, self.dim = self.store[0]["position"].shape
        span = self.history + 2
        if self.history + 1 + self.rollout_steps > n_times:
            raise SciopsError(f"data.in_steps + 1 + data.out_steps = "
                              f"{self.history + 1 + self.rollout_steps} exceeds the {n_times} "
                              f"stored times of {path}")
        starts = [0] if cfg.data.windows == "first" else \
            list(range(0, n_times - span + 1, cfg.data.window_stride))
        self.train_set = ParticleWindows(self.store, train_range, span, starts)
        self.test_samples = test_range
        self.in_channels = self.history * self.dim + 2 * self.dim + self.n_materials
        self.out_channels = self.dim
        self.velocity = Normalizer(self.dim)
        self.acceleration = Normalizer(self.dim)

    def state_modules(self) -> dict[str, nn.Module]:
        return {"velocity": self.velocity, "acceleration": self.acceleration}

    @torch.no_grad()
    def prepare(self) -> None:
        """Velocity and acceleration statistics of the training samples (+ noise variance)."""
        samples = self.train_set.samples

        def diffs(order: int):
            for k in samples:
                yield (torch.diff(self.store[k]["position"], n=order, dim=0).reshape(-1, self.dim),)

        for norm, order in ((self.velocity, 1), (self.acceleration, 2)):
            norm.fit(diffs(order), 0)
            norm.std.copy_(torch.sqrt(norm.std**2 + self.noise_std**2))

    def features(self, position: Tensor, material: Tensor) -> Tensor:
        """Model inputs (B, N, in_channels) from positions (B, H + 1, N, d) and ids (B, N)."""
        B, _, N, d = position.shape
        velocity = (torch.diff(position, dim=1) - self.velocity.mean) / self.velocity.std
        lo, hi = self.walls
        last = position[:, -1]
        walls = (torch.cat([last - lo, hi - last], -1) / self.wall_scale).clamp(0.0, 1.0)
        one_hot = F.one_hot(material, self.n_materials).to(position.dtype)
        return torch.cat([velocity.transpose(1, 2).reshape(B, N, -1), walls, one_hot], -1)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        position, material = batch
        history, target = position[:, :-1], position[:, -1]
        noise = random_walk_noise(tuple(history.shape), self.noise_std, dtype=history.dtype,
                                  device=history.device)
        noisy = history + noise
        acceleration = (target + noise[:, -1]) - 2 * noisy[:, -1] + noisy[:, -2]
        goal = (acceleration - self.acceleration.mean) / self.acceleration.std
        pred = model(noisy[:, -1], self.features(noisy, material))
        return F.mse_loss(pred, goal)

    def step(self, model: nn.Module, history: Tensor, material: Tensor,
             nodes: Tensor | None = None) -> Tensor:
        """Next positions (B, N, d) from ``history`` (B, H + 1, N, d); with ``nodes``
        (B, n), only those particles form the graph and all are queried."""
        last = history[:, -1]
        if nodes is None:
            pred = model(last, self.features(history, material))
        else:
            sub = gather_points(history.transpose(1, 2), nodes).transpose(1, 2)
            pred = model(sub[:, -1], self.features(sub, gather_points(material, nodes)),
                         query=last)
        acceleration = pred * self.acceleration.std + self.acceleration.mean
        return 2 * last - history[:, -2] + acceleration

    @torch.no_grad()
    def rollout(self, model: nn.Module, history: Tensor, material: Tensor,
                steps: int) -> Tensor:
        """Autoregressive positions (B, steps, N, d) after ``history`` (B, H + 1, N, d)."""
        select = getattr(model, "select_nodes", None)
        nodes = select(history[:, -1]) if select is not None else None
        frames = list(history.unbind(1))
        out = []
        for _ in range(steps):
            nxt = self.step(model, torch.stack(frames[-self.history - 1:], 1), material, nodes)
            frames.append(nxt)
            out.append(nxt)
        return torch.stack(out, 1)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> float:
        """Mean squared rollout position error (m²) over the test samples; NaN without."""
        if len(self.test_samples) == 0:
            return float("nan")
        h, n = self.history, self.rollout_steps
        errors = []
        for k in self.test_samples:
            item = self.store[k]
            position = item["position"][None].to(device)
            material = item["material"][None].long().to(device)
            pred = self.rollout(model, position[:, :h + 1], material, n)
            errors.append(float(((pred - position[:, h + 1:h + 1 + n]) ** 2).sum(-1).mean()))
        return sum(errors) / len(errors)
