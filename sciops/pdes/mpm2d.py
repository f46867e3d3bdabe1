"""2D continuum mechanics of particles: MLS-MPM for water, elastic solids and sand.

Balance of momentum ``rho Dv/Dt = div(sigma) + rho g`` in the unit box ``[0, 1]²`` (m),
with gravity ``g = (0, -gravity)``, solved by the moving-least-squares material point
method (Hu et al. 2018, "A moving least squares material point method with displacement
discontinuity and two-way rigid body coupling"): APIC transfers with quadratic B-splines
on a grid of ``n_grid`` cells per side, symplectic Euler in time. Materials, by particle:

* ``0`` water — weakly compressible, Kirchhoff stress ``tau = K J (J - 1) I``
  (``J = det F``, bulk modulus ``K``); F is reset to ``sqrt(J) I`` every step, so the
  fluid keeps no memory of shear;
* ``1`` elastic — compressible neo-Hookean, ``tau = mu (F F^T - I) + lambda log(J) I``;
* ``2`` sand — Drucker–Prager elastoplasticity (Klár et al. 2016, "Drucker-Prager
  elastoplasticity for sand animation"): St. Venant–Kirchhoff in Hencky strain,
  ``tau = U (2 mu eps + lambda tr(eps) I) U^T`` with ``F = U exp(eps) V^T``, and the return
  map projecting ``eps`` onto the cone of friction angle ``friction_angle`` (no hardening,
  no cohesion, no volume correction).

``mu, lambda`` follow from ``youngs_modulus`` and ``poisson_ratio`` (shared by the elastic
solid and the sand). Boundaries: ``"walls"`` — separating slip walls: grid nodes within
``wall_cells`` cells of a side lose the velocity component into that side, and particles
are kept inside the planes ``wall_cells * dx`` from each side; ``"periodic"`` — the box
wraps around (no walls).

Scenes (``sample_inputs``): ``"blocks"`` — 1..``max_blocks`` non-overlapping rectangles
of side ``block_min..block_max`` m at random places, each with a random velocity of up to
``max_speed`` m/s per component (drops, as GNS's WaterDrop); ``"dam_break"`` — one resting
column against the left wall on the floor. ``material="mixed"`` draws each block's
material. Particles are uniform random in their block; a block's particles share its
area, so every particle starts with density ``density``. The particle count is fixed by
``n_particles`` so samples batch.

Stored data use the particle layout of the data format: dims ``sample, time, particle,
dim`` for ``position`` (m) and ``velocity`` (m/s), ``sample, particle`` for ``material``;
``dim`` 0 is x, 1 is y (gravity along -y). ``t`` holds the record times (s).

Stability: ``Params`` rejects a sub-step above half the time a pressure wave needs to cross
a cell (Courant 0.5 at the largest wave speed of the materials used); during the solve a
particle moving more than a cell per sub-step or a NaN raises ``SolverDiverged``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sciops.pdes.base import PDE, Params, SolverDiverged, Variable, param, register

WATER, ELASTIC, SAND = 0, 1, 2
MATERIALS = {"water": (WATER,), "elastic": (ELASTIC,), "sand": (SAND,),
             "mixed": (WATER, ELASTIC, SAND)}
# Largest sub-step, as a fraction of the time a pressure wave takes to cross one cell.
_COURANT = 0.5
# Tries to place each block without overlapping the blocks already placed.
_PLACEMENT_TRIES = 100


@dataclass(frozen=True)
class MPM2DParams(Params):
    n_particles: int = param(2000, "particles per sample (fixed, so samples batch)",
                             range=(1, 100_000_000))
    n_grid: int = param(64, "grid cells per side of the unit box", range=(8, 4096))
    dt: float = param(2.5e-3, "time between stored records (s)", range=(0.0, None),
                      open_low=True)
    substeps: int = param(20, "MPM steps per record", range=(1, 1_000_000))
    n_records: int = param(100, "stored times after t=0", range=(1, 1_000_000))
    gravity: float = param(9.81, "gravitational acceleration along -y (m/s²)",
                           range=(0.0, None))
    boundary: str = param("walls", "'walls' (separating slip walls) or 'periodic'",
                          choices=("walls", "periodic"))
    wall_cells: int = param(3, "wall thickness in grid cells (walls only)", range=(1, 1024))
    scene: str = param("blocks", "'blocks' (random drops) or 'dam_break' (resting column)",
                       choices=("blocks", "dam_break"))
    material: str = param("water", "'water', 'elastic', 'sand' or 'mixed' (random per block)",
                          choices=tuple(MATERIALS))
    max_blocks: int = param(3, "most blocks per sample ('blocks' scene)", range=(1, 64))
    block_min: float = param(0.15, "smallest block side (m)", range=(0.0, 1.0), open_low=True)
    block_max: float = param(0.3, "largest block side (m)", range=(0.0, 1.0), open_low=True)
    max_speed: float = param(1.0, "largest initial speed per component (m/s, 'blocks')",
                             range=(0.0, None))
    density: float = param(1000.0, "initial density (kg/m³)", range=(0.0, None), open_low=True)
    bulk_modulus: float = param(2e5, "water bulk modulus K (Pa)", range=(0.0, None),
                                open_low=True)
    youngs_modulus: float = param(2e5, "Young's modulus of elastic solid and sand (Pa)",
                                  range=(0.0, None), open_low=True)
    poisson_ratio: float = param(0.3, "Poisson ratio of elastic solid and sand",
                                 range=(0.0, 0.45))
    friction_angle: float = param(35.0, "sand friction angle (degrees)", range=(0.0, 60.0),
                                  open_low=True)
    dtype: str = param("float32", "solver and storage precision",
                       choices=("float32", "float64"))

    def validate(self) -> None:
        if self.block_min > self.block_max:
            raise ValueError(f"block_min={self.block_min} must be <= block_max={self.block_max}")
        if self.boundary == "walls" and 2 * self.wall_cells + 2 >= self.n_grid:
            most = (self.n_grid - 3) // 2
            raise ValueError(f"wall_cells={self.wall_cells} leaves no room inside "
                             f"n_grid={self.n_grid}; allowed wall_cells <= {most}")
        span = self.walls[1] - self.walls[0]
        if self.block_max >= span:
            raise ValueError(f"block_max={self.block_max} must be below the free span "
                             f"{span:.4g} m between the walls")
        c = self.wave_speed
        step = self.dt / self.substeps
        limit = _COURANT / (self.n_grid * c)
        if step > limit:
            raise ValueError(
                f"substeps={self.substeps} is too few: dt/substeps={step:.3g} s exceeds "
                f"{limit:.3g} s (Courant {_COURANT} at wave speed {c:.3g} m/s, "
                f"cell {1 / self.n_grid:.3g} m); use substeps >= {math.ceil(self.dt / limit)}")

    @property
    def lame(self) -> tuple[float, float]:
        """(mu, lambda) in Pa from Young's modulus and Poisson ratio."""
        E, nu = self.youngs_modulus, self.poisson_ratio
        return E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))

    @property
    def wave_speed(self) -> float:
        """Largest pressure-wave speed (m/s) among the materials in use."""
        mu, lam = self.lame
        speeds = {WATER: math.sqrt(self.bulk_modulus / self.density),
                  ELASTIC: math.sqrt((lam + 2 * mu) / self.density)}
        speeds[SAND] = speeds[ELASTIC]
        return max(speeds[m] for m in MATERIALS[self.material])

    @property
    def walls(self) -> tuple[float, float]:
        """Lowest and highest particle coordinate (m) on both axes."""
        if self.boundary == "periodic":
            return 0.0, 1.0
        inset = self.wall_cells / self.n_grid
        return inset, 1.0 - inset

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


# --- 2x2 linear algebra -----------------------------------------------------------------------

def _rotation(angle: Tensor) -> Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def svd2x2(F: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Closed-form SVD ``F = U diag(sigma) V^T`` of (..., 2, 2) matrices, U and V rotations.

    Polar decomposition ``F = R S`` (R the rotation nearest to F), then the eigenvectors of
    the symmetric ``S``. ``sigma`` is negative only where ``det F < 0``. Deterministic and
    branch-free, unlike a batched LAPACK call.
    """
    a, b, c, d = F[..., 0, 0], F[..., 0, 1], F[..., 1, 0], F[..., 1, 1]
    theta = torch.atan2(c - b, a + d)
    cr, sr = torch.cos(theta), torch.sin(theta)
    s00, s01, s11 = cr * a + sr * c, cr * b + sr * d, cr * d - sr * b
    phi = 0.5 * torch.atan2(2 * s01, s00 - s11)
    cp, sp = torch.cos(phi), torch.sin(phi)
    sigma = torch.stack([cp * cp * s00 + 2 * cp * sp * s01 + sp * sp * s11,
                         sp * sp * s00 - 2 * cp * sp * s01 + cp * cp * s11], -1)
    V = _rotation(phi)
    return _rotation(theta) @ V, sigma, V


# --- constitutive models (Kirchhoff stress tau = P F^T) ---------------------------------------

def _det(F: Tensor) -> Tensor:
    return F[..., 0, 0] * F[..., 1, 1] - F[..., 0, 1] * F[..., 1, 0]


def _water(F: Tensor, bulk: float) -> tuple[Tensor, Tensor]:
    J = _det(F)
    eye = torch.eye(2, dtype=F.dtype, device=F.device)
    F_new = torch.sqrt(J)[..., None, None] * eye
    return F_new, (bulk * J * (J - 1))[..., None, None] * eye


def _neo_hookean(F: Tensor, mu: float, lam: float) -> tuple[Tensor, Tensor]:
    J = _det(F)
    eye = torch.eye(2, dtype=F.dtype, device=F.device)
    return F, mu * (F @ F.mT - eye) + (lam * torch.log(J))[..., None, None] * eye


def drucker_prager_return(eps: Tensor, mu: float, lam: float, friction_angle: float) -> Tensor:
    """Klár et al. 2016 return map of principal Hencky strains ``eps`` (..., 2).

    Inside the cone: unchanged; in tension (``tr eps > 0``): projected to the tip (0);
    otherwise the deviatoric part is shortened by the plastic multiplier.
    """
    sin_phi = math.sin(math.radians(friction_angle))
    alpha = math.sqrt(2.0 / 3.0) * 2 * sin_phi / (3 - sin_phi)
    trace = eps.sum(-1, keepdim=True)
    dev = eps - trace / 2
    dev_norm = dev.norm(dim=-1, keepdim=True)
    gamma = dev_norm + (2 * lam + 2 * mu) / (2 * mu) * trace * alpha
    shrunk = eps - gamma * dev / dev_norm.clamp_min(1e-30)
    out = torch.where(gamma > 0, shrunk, eps)
    return torch.where(trace > 0, torch.zeros_like(eps), out)


def _sand(F: Tensor, mu: float, lam: float, friction_angle: float) -> tuple[Tensor, Tensor]:
    U, sigma, V = svd2x2(F)
    eps = drucker_prager_return(torch.log(sigma.clamp_min(1e-6)), mu, lam, friction_angle)
    F_new = U @ torch.diag_embed(torch.exp(eps)) @ V.mT
    principal = 2 * mu * eps + lam * eps.sum(-1, keepdim=True)
    return F_new, U @ torch.diag_embed(principal) @ U.mT


def constitutive(F: Tensor, material: Tensor, params: MPM2DParams) -> tuple[Tensor, Tensor]:
    """Projected deformation gradients and Kirchhoff stresses (Pa), both (B, N, 2, 2)."""
    mu, lam = params.lame
    F_out, tau = F.clone(), torch.zeros_like(F)
    models = {WATER: lambda G: _water(G, params.bulk_modulus),
              ELASTIC: lambda G: _neo_hookean(G, mu, lam),
              SAND: lambda G: _sand(G, mu, lam, params.friction_angle)}
    for mat, model in models.items():
        mask = material == mat
        if bool(mask.all()):
            return model(F)
        if bool(mask.any()):
            F_out[mask], tau[mask] = model(F[mask])
    return F_out, tau


# --- particle <-> grid transfers ---------------------------------------------------------------

_STENCIL = list(itertools.product(range(3), repeat=2))


def _nodes(params: MPM2DParams) -> int:
    """Grid nodes per side: the walled box has nodes on both faces, the periodic one wraps."""
    return params.n_grid if params.boundary == "periodic" else params.n_grid + 1


def stencil(position: Tensor, params: MPM2DParams) -> tuple[Tensor, Tensor, Tensor]:
    """Quadratic B-spline stencil of each particle on the grid.

    ``position`` (B, N, 2) in m. Returns flat node indices (B, N, 9) into a
    ``(B * nodes², ...)`` grid, weights (B, N, 9) summing to 1, and ``x_node - x_p``
    (B, N, 9, 2) in m.
    """
    B = position.shape[0]
    n, nodes = params.n_grid, _nodes(params)
    scaled = position * n
    base = torch.floor(scaled - 0.5)
    fx = scaled - base
    w = torch.stack([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2], -2)
    offsets = torch.tensor(_STENCIL, dtype=position.dtype, device=position.device)
    weight = w[:, :, offsets[:, 0].long(), 0] * w[:, :, offsets[:, 1].long(), 1]
    delta = (offsets - fx[:, :, None, :]) / n
    node = base.long()[:, :, None, :] + offsets.long()
    if params.boundary == "periodic":
        node = node % nodes
    batch = torch.arange(B, device=position.device)[:, None, None] * nodes * nodes
    return batch + node[..., 0] * nodes + node[..., 1], weight, delta


def p2g(transfer: tuple[Tensor, Tensor, Tensor], velocity: Tensor, affine: Tensor,
        mass: Tensor, params: MPM2DParams) -> tuple[Tensor, Tensor]:
    """Scatter particle mass and APIC momentum to the grid.

    ``transfer``: the particles' :func:`stencil`; ``velocity`` (B, N, 2); ``affine``
    (B, N, 2, 2) the momentum's affine part (kg/s, stress term included); ``mass`` (B, N)
    kg. Returns node mass (B * nodes²,) in kg and momentum (B * nodes², 2) in kg m/s.
    """
    index, weight, delta = transfer
    momentum = mass[..., None, None] * velocity[:, :, None, :] + delta @ affine.mT
    values = torch.cat([(weight * mass[..., None])[..., None], weight[..., None] * momentum], -1)
    nodes = _nodes(params)
    grid = values.new_zeros(velocity.shape[0] * nodes * nodes, 3)
    grid.index_add_(0, index.reshape(-1), values.reshape(-1, 3))
    return grid[:, 0], grid[:, 1:]


def _grid_velocity(mass: Tensor, momentum: Tensor, dt: float, params: MPM2DParams) -> Tensor:
    """Node velocities after gravity and wall conditions, (B * nodes², 2) in m/s."""
    filled = mass > 0
    v = torch.where(filled[:, None], momentum / torch.where(filled, mass, 1.0)[:, None], 0.0)
    v[:, 1] = torch.where(filled, v[:, 1] - dt * params.gravity, v[:, 1])
    if params.boundary == "walls":
        nodes, n, k = _nodes(params), params.n_grid, params.wall_cells
        i = torch.arange(nodes, device=v.device)
        low, high = i <= k, i >= n - k
        vx, vy = v[:, 0].view(-1, nodes, nodes), v[:, 1].view(-1, nodes, nodes)
        vx.masked_fill_(low[:, None] & (vx < 0) | high[:, None] & (vx > 0), 0.0)
        vy.masked_fill_(low[None, :] & (vy < 0) | high[None, :] & (vy > 0), 0.0)
    return v


def mpm_step(state: dict[str, Tensor], material: Tensor, mass: Tensor, volume: Tensor,
             dt: float, params: MPM2DParams) -> dict[str, Tensor]:
    """One MLS-MPM step of ``dt`` s. ``state``: ``x``, ``v`` (B, N, 2), ``C``, ``F``
    (B, N, 2, 2); ``mass`` (kg) and ``volume`` (m², initial) are (B, N)."""
    x, v, C, F = state["x"], state["v"], state["C"], state["F"]
    eye = torch.eye(2, dtype=x.dtype, device=x.device)
    F, tau = constitutive((eye + dt * C) @ F, material, params)
    # MLS-MPM: the stress force enters as an affine momentum term; 4 n² = M_p^{-1}.
    affine = -dt * volume[..., None, None] * 4 * params.n_grid**2 * tau + mass[..., None, None] * C
    transfer = stencil(x, params)
    grid_mass, grid_momentum = p2g(transfer, v, affine, mass, params)
    grid_v = _grid_velocity(grid_mass, grid_momentum, dt, params)
    index, weight, delta = transfer
    node_v = grid_v.index_select(0, index.reshape(-1)).view(*index.shape, 2)
    v = (weight[..., None] * node_v).sum(-2)
    C = 4 * params.n_grid**2 * torch.einsum("bnk,bnki,bnkj->bnij", weight, node_v, delta)
    lo, hi = params.walls
    # A NaN position would index outside the grid; park it at a wall so that the guard
    # after the record reports the divergence (the NaN velocity spreads meanwhile).
    x = torch.nan_to_num(x + dt * v, nan=lo)
    x = torch.remainder(x, 1.0) if params.boundary == "periodic" else x.clamp(lo, hi)
    return {"x": x, "v": v, "C": C, "F": F}


# --- scenes ------------------------------------------------------------------------------------

def _uniform(generator: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _blocks(params: MPM2DParams, g: torch.Generator) -> list[tuple[float, float, float, float]]:
    """Non-overlapping rectangles ``(x0, y0, width, height)`` inside the walls."""
    lo, hi = params.walls
    if params.scene == "dam_break":
        w = _uniform(g, params.block_min, params.block_max)
        h = _uniform(g, params.block_min, params.block_max)
        return [(lo, lo, w, h)]
    count = int(torch.randint(1, params.max_blocks + 1, (), generator=g))
    gap = 1.0 / params.n_grid
    rects: list[tuple[float, float, float, float]] = []
    for _ in range(count):
        for _ in range(_PLACEMENT_TRIES):
            w = _uniform(g, params.block_min, params.block_max)
            h = _uniform(g, params.block_min, params.block_max)
            x0, y0 = _uniform(g, lo, hi - w), _uniform(g, lo, hi - h)
            if all(x0 + w + gap <= a or a + c + gap <= x0 or y0 + h + gap <= b or b + d + gap <= y0
                   for a, b, c, d in rects):
                rects.append((x0, y0, w, h))
                break
    return rects


def _split(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainders)."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(e) for e in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[:total - sum(counts)]:
        counts[i] += 1
    return counts


def _sample_one(params: MPM2DParams, g: torch.Generator) -> dict[str, Tensor]:
    rects = _blocks(params, g)
    counts = _split(params.n_particles, [w * h for _, _, w, h in rects])
    choices = MATERIALS[params.material]
    parts: dict[str, list[Tensor]] = {"position": [], "velocity": [], "material": [], "volume": []}
    for (x0, y0, w, h), m in zip(rects, counts):
        mat = choices[int(torch.randint(len(choices), (), generator=g))] if len(choices) > 1 \
            else choices[0]
        speed = params.max_speed if params.scene == "blocks" else 0.0
        vel = (2 * torch.rand(2, generator=g, dtype=torch.float64) - 1) * speed
        u = torch.rand(m, 2, generator=g, dtype=torch.float64)
        parts["position"].append(torch.tensor([x0, y0], dtype=torch.float64)
                                 + u * torch.tensor([w, h], dtype=torch.float64))
        parts["velocity"].append(vel.expand(m, 2))
        parts["material"].append(torch.full((m,), mat, dtype=torch.long))
        parts["volume"].append(torch.full((m,), w * h / max(m, 1), dtype=torch.float64))
    return {k: torch.cat(v)[None] for k, v in parts.items()}


@register
class MPM2D(PDE):
    """2D MLS-MPM particles: water, neo-Hookean solid, Drucker–Prager sand (module docstring)."""

    name = "mpm2d"
    Params = MPM2DParams
    materials = ("water", "elastic", "sand")  # names of the material ids 0, 1, 2
    variables = {
        "position": Variable(("sample", "time", "particle", "dim"), "m",
                             "particle position (dim 0: x, dim 1: y, gravity along -y)"),
        "velocity": Variable(("sample", "time", "particle", "dim"), "m/s", "particle velocity"),
        "material": Variable(("sample", "particle"), "1",
                             "material id: 0 water, 1 elastic (neo-Hookean), 2 sand"),
    }

    def sample_inputs(self, params: MPM2DParams, n: int,
                      generator: torch.Generator) -> dict[str, Tensor]:
        """``n`` scenes: ``position``, ``velocity`` (n, N, 2), ``material`` (n, N) int64 and
        the particles' initial ``volume`` (n, N) in m², in float64 on the CPU."""
        samples = [_sample_one(params, generator) for _ in range(n)]
        return {k: torch.cat([s[k] for s in samples]) for k in samples[0]}

    def coords(self, params: MPM2DParams) -> dict[str, tuple[str, np.ndarray]]:
        t = np.arange(params.n_records + 1) * params.dt
        return {"t": ("time", t), "particle": ("particle", np.arange(params.n_particles)),
                "dim": ("dim", np.arange(2))}

    def solve(self, params: MPM2DParams, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None) -> dict[str, Tensor]:
        """Simulate a batch from ``sample_inputs``-style inputs (any device).

        Returns ``position``, ``velocity`` (B, n_records + 1, N, 2) including t=0 and
        ``material`` (B, N).
        """
        dtype = params.torch_dtype
        x = inputs["position"].to(dtype)
        if x.ndim != 3 or x.shape[1:] != (params.n_particles, 2):
            raise ValueError(f"position: expected (batch, {params.n_particles}, 2), "
                             f"got {tuple(x.shape)}")
        material = inputs["material"].to(x.device, torch.long)
        volume = inputs["volume"].to(x.device, dtype)
        mass = volume * params.density
        B, N, _ = x.shape
        eye = torch.eye(2, dtype=dtype, device=x.device)
        state = {"x": x, "v": inputs["velocity"].to(x.device, dtype),
                 "C": x.new_zeros(B, N, 2, 2), "F": eye.expand(B, N, 2, 2).clone()}
        dt = params.dt / params.substeps
        positions, velocities = [state["x"]], [state["v"]]
        for r in range(params.n_records):
            for _ in range(params.substeps):
                state = mpm_step(state, material, mass, volume, dt, params)
            self._guard(state, dt, params, (r + 1) * params.dt)
            positions.append(state["x"])
            velocities.append(state["v"])
            if callback is not None:
                callback((r + 1) / params.n_records)
        return {"position": torch.stack(positions, 1), "velocity": torch.stack(velocities, 1),
                "material": material}

    @staticmethod
    def _guard(state: dict[str, Tensor], dt: float, params: MPM2DParams, t: float) -> None:
        speed = state["v"].abs().amax(dim=(1, 2))
        finite = torch.stack([torch.isfinite(s).flatten(1).all(1) for s in state.values()]).all(0)
        bad = ~finite | (speed * dt > 1.0 / params.n_grid)
        if bool(bad.any()):
            raise SolverDiverged(
                f"mpm2d diverged before t={t:g} s (a particle moved more than a cell in one "
                f"step, or NaN); raise substeps or lower the moduli",
                torch.nonzero(bad).flatten().tolist())

    def exact(self, params: MPM2DParams, t: float | np.ndarray, position: Tensor,
              velocity: Tensor) -> Tensor:
        """Free flight: ``x(t) = x0 + v0 t + g t² / 2`` for a body touching nothing.

        ``position``, ``velocity`` (..., 2) at t=0; returns (len(t), ..., 2) in float64.
        Symplectic Euler lags this by ``g dt_sub t / 2`` (first order in the sub-step).
        """
        t = torch.as_tensor(np.atleast_1d(np.asarray(t, dtype=np.float64)))
        g = torch.tensor([0.0, -params.gravity], dtype=torch.float64)
        shape = (-1,) + (1,) * position.ndim
        x0, v0 = position.double(), velocity.double()
        return x0 + v0 * t.view(shape) + 0.5 * g * t.view(shape) ** 2
