"""Verification that comes with every definition: ``sciops verify PDE``.

For a :class:`~sciops.pdes.semilinear.SemilinearPDE`, on the smooth random case of its
``verify_case`` (float64, ETDRK4, ``dt`` and ``resolution`` from that case), checks:

1. **temporal order** — final-state errors at ``dt`` and ``dt/2`` against ``dt/16``:
   ``log2(e(dt)/e(dt/2)) >= 3.7`` (for a linear PDE, where ETDRK is exact: both errors
   below ``1e-12``);
2. **spatial convergence** — final states at ``n/2`` and ``n`` against ``2n`` (same
   ``dt``): the error at ``n`` is below ``1e-9`` and 100x below the one at ``n/2`` (or
   both at round-off);
3. **grid residual** — the spectral/finite-difference residual of the output recorded
   every step of ``dt/4``, relative to ``|u_t|``, below ``1e-4``;
4. **pointwise residual** — the autograd residual of a space–time interpolant of the same
   output (trigonometric in space, quartic in time) at random points, relative to
   ``|u_t|``, below ``1e-4`` (not applicable when the definition has no pointwise form);
5. **residual order** — the grid residual shrinks with the step at the integrator's order,
   ``log2(r(dt/2)/r(dt/4)) >= 3.5``;
6. **sensitivity** — solving a wrong equation (``N``, or ``L`` for a linear PDE, scaled by
   1.1) raises the residual at least 100x, so the residual does see the equation.

:func:`verify_params` checks the parameters before any solving: the overrides, the grids and
steps the checks derive from them, and the memory of the recorded runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciops import spectral
from sciops.data import sizing
from sciops.integrators import MAX_STEPS
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE

FIXED = {"dtype": "float64", "method": "etdrk4", "output_resolution": None, "t_burn_in": 0.0}
"""Parameters every verification uses; ``n_records`` the checks choose themselves."""
RECORD_COPIES = 4
"""Recorded runs held at once by the residual checks (the run, its stacked copy, the perturbed
run and its stacked copy)."""


@dataclass(frozen=True)
class Check:
    """One verification result: ``value`` compared with ``bound`` by ``op`` (``>=``/``<=``);
    ``value`` None means not applicable (``detail`` says why)."""

    name: str
    value: float | None
    op: str
    bound: float
    detail: str

    @property
    def passed(self) -> bool:
        if self.value is None:
            return True
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound

    def line(self) -> str:
        state = "n/a " if self.value is None else ("pass" if self.passed else "FAIL")
        value = "-" if self.value is None else f"{self.value:.3g}"
        return f"{state}  {self.name:<20} {value:>10} {self.op} {self.bound:<8.3g} {self.detail}"


def _rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _stack(out: Mapping[str, Tensor]) -> Tensor:
    return torch.stack(list(out.values()), 2)  # (batch, time, fields, ...)


def _final(pde: SemilinearPDE, p: SemilinearParams, inputs: Mapping[str, Tensor]) -> Tensor:
    return _stack(pde.solve(p.replace(n_records=1), inputs))[:, -1]


def _resample(inputs: Mapping[str, Tensor], n: int, ndim: int) -> dict[str, Tensor]:
    return {k: spectral.fourier_resample(v, (n,) * ndim) for k, v in inputs.items()}


def _grid_residual(pde: SemilinearPDE, p: SemilinearParams, out: Mapping[str, Tensor]
                   ) -> float:
    t = torch.linspace(0.0, p.t_final, p.n_records + 1, dtype=torch.float64)
    r = pde.residual(out, {"t": t}, p)
    u_t = _stack({k: torch.gradient(v, spacing=(t,), dim=1, edge_order=2)[0]
                  for k, v in out.items()})
    return float(r.norm() / u_t.norm())


def _pointwise_residual(pde: SemilinearPDE, p: SemilinearParams, out: Mapping[str, Tensor],
                        generator: torch.Generator, n_points: int = 256) -> float:
    """Autograd residual of sample 0 interpolated in space (trigonometric) and time (quartic
    through the five records around the middle one) at random points of the middle step."""
    c = p.n_records // 2
    h = p.t_final / p.n_records
    t0 = c * h
    t = (t0 + h * (torch.rand(n_points, generator=generator, dtype=torch.float64) - 0.5))
    xs = {a: p.length * torch.rand(n_points, generator=generator, dtype=torch.float64)
          for a in pde.axes}
    coords = {"t": t.requires_grad_(), **{a: x.requires_grad_() for a, x in xs.items()}}
    nodes = [t0 + h * j for j in range(-2, 3)]
    weights = [math.prod((coords["t"] - nodes[m]) / (nodes[j] - nodes[m])
                         for m in range(5) if m != j) for j in range(5)]
    L, pts = pde.lengths(p), [coords[a] for a in pde.axes]
    fields = {k: sum(w * spectral.interpolate(v[0, c + j - 2], L, pts)
                     for j, w in enumerate(weights)) for k, v in out.items()}
    r = pde.residual(fields, coords, p)
    u_t = torch.stack([torch.autograd.grad(f.sum(), coords["t"], retain_graph=True)[0]
                       for f in fields.values()], -1)
    return float(r.detach().norm() / u_t.detach().norm())


def _steps(p: SemilinearParams) -> int:
    """Steps of ``dt/2`` over ``t_final`` the residual checks record (at least 5)."""
    return max(5, round(2 * p.t_final / p.dt))


def verify_params(pde: SemilinearPDE, overrides: Mapping[str, Any] | None = None, *,
                  seed: int = 0, samples: int = 2) -> SemilinearParams:
    """The parameters of the checks: ``pde.verify_case``, ``overrides`` and :data:`FIXED`.
    ValueError naming the option for a fixed key or ``n_records``, a value out of range, a
    ``resolution``/``dt`` whose derived grids (``n/2``, ``2n``) or steps (``dt/16``) are out of
    range or exceed ``MAX_STEPS`` over ``t_final``, a ``seed`` outside ``[0, 2**63)``;
    SciopsError when the recorded runs (``samples`` x ``2 t_final/dt`` records x fields x
    ``resolution^ndim``, float64) exceed the memory."""
    fixed = sorted(set(overrides or {}) & {*FIXED, "n_records"})
    if fixed:
        raise ValueError(f"--set {fixed[0]}: verify uses "
                         f"{', '.join(f'{k}={v}' for k, v in FIXED.items())} and chooses "
                         f"n_records itself; these cannot be set")
    if not 0 <= seed < 2**63:
        raise ValueError(f"--seed {seed} is out of range; allowed [0, 2**63)")
    p = pde.make_params({**pde.verify_case, **dict(overrides or {}), **FIXED})
    n = p.resolution
    try:
        for change in ({"resolution": n // 2}, {"resolution": 2 * n}, {"dt": p.dt / 16}):
            p.replace(**change)
    except ValueError as e:
        raise ValueError(f"resolution={n}, dt={p.dt:g}: the checks also solve at resolution/2, "
                         f"2*resolution and dt/16, and {e}") from None
    if 16 * p.t_final / p.dt > MAX_STEPS:
        raise ValueError(f"t_final={p.t_final:g}, dt={p.dt:g}: the reference solve at dt/16 "
                         f"would take {16 * p.t_final / p.dt:.3g} steps (limit {MAX_STEPS:.0e}); "
                         f"raise dt or lower t_final")
    record = samples * len(pde.fields) * n**pde.ndim * 8
    sizing.require_memory(RECORD_COPIES * (2 * _steps(p) + 1) * record,
                          f"verify {pde.name}: t_final={p.t_final:g}, dt={p.dt:g}, "
                          f"resolution={n} record {2 * _steps(p) + 1} steps that need",
                          "raise dt or lower t_final or resolution with --set")
    return p


def verify(pde: SemilinearPDE, overrides: Mapping[str, Any] | None = None, *, seed: int = 0,
           samples: int = 2) -> list[Check]:
    """Run the checks of the module docstring; returns one :class:`Check` per item.
    Parameters are checked first (:func:`verify_params`)."""
    p = verify_params(pde, overrides, seed=seed, samples=samples)
    gen = torch.Generator().manual_seed(seed)
    inputs = pde.sample_inputs(p, samples, gen)
    checks = []

    ref = _final(pde, p.replace(dt=p.dt / 16), inputs)
    e1, e2 = (_rel(_final(pde, p.replace(dt=p.dt / s), inputs), ref) for s in (1, 2))
    detail = f"ETDRK4 errors {e1:.2e}, {e2:.2e} at dt={p.dt:g}, dt/2 vs dt/16"
    linear = type(pde).nonlinear is SemilinearPDE.nonlinear
    if linear:  # exponential integrators are exact for u_t = L u + f
        checks.append(Check("temporal exactness", max(e1, e2), "<=", 1e-12, detail))
    else:
        checks.append(Check("temporal order", math.log2(e1 / e2), ">=", 3.7, detail))

    n = p.resolution
    fine = _final(pde, p.replace(resolution=2 * n), _resample(inputs, 2 * n, pde.ndim))
    mid = _final(pde, p, inputs)
    coarse = _final(pde, p.replace(resolution=n // 2), _resample(inputs, n // 2, pde.ndim))
    def every(k: int) -> tuple[slice, ...]:
        return (slice(None), slice(None)) + (slice(None, None, k),) * pde.ndim

    ec, em = _rel(coarse, fine[every(4)]), _rel(mid[every(2)], fine[every(4)])
    checks.append(Check("spatial convergence", em, "<=", min(1e-9, max(1e-2 * ec, 1e-11)),
                        f"errors at n={n // 2}, {n}: {ec:.2e}, {em:.2e} vs n={2 * n}"))

    # residuals of the output recorded every step, at dt/2 and dt/4
    steps = _steps(p)
    coarse_rec = p.replace(n_records=steps, dt=p.t_final / steps)
    r1 = _grid_residual(pde, coarse_rec, pde.solve(coarse_rec, inputs))
    rec = p.replace(n_records=2 * steps, dt=coarse_rec.dt / 2)
    out = pde.solve(rec, inputs)
    r2 = _grid_residual(pde, rec, out)
    checks.append(Check("grid residual", r2, "<=", 1e-4,
                        f"relative to |u_t|, {2 * steps} records one step dt/4 apart"))
    try:
        rp = _pointwise_residual(pde, rec, out, gen)
        checks.append(Check("pointwise residual", rp, "<=", 1e-4,
                            "autograd, relative to |u_t|, 256 random points"))
    except NotImplementedError as e:
        checks.append(Check("pointwise residual", None, "<=", 1e-4, str(e)))
    checks.append(Check("residual order", math.log2(r1 / r2), ">=", 3.5,
                        f"grid residuals {r1:.2e}, {r2:.2e} at dt/2, dt/4"))

    wrong = _grid_residual(pde, rec, pde.solve(rec, inputs, perturb=1.1))
    what = "L" if linear else "N"
    checks.append(Check("sensitivity", wrong / r2, ">=", 100.0,
                        f"residual {wrong:.2e} when {what} is scaled by 1.1"))
    return checks
