"""sciops against Exponax: the same ETDRK4 steps of the same periodic PDEs, error and speed.

The peer is Exponax (Koehler, Geisberger & Thuerey, APEBench, NeurIPS 2024), a JAX library of
Fourier pseudo-spectral ETDRK steppers, installed beside sciops (the ``bench`` extra) and
imported as a library; none of its code is copied::

    .venv/bin/pip install jax exponax    # CPU jaxlib; leaves torch alone
    .venv/bin/python benchmarks/exponax.py [--threads 1] [--repeats 15] [--cases ks2d ...]

Cases (the sciops family, its grid, batch and step; both codes ETDRK4 at the same step,
Cox–Matthews stages, contour-integral coefficients, 2/3-rule dealiasing of the nonlinear
term's input and output):

* ``ks1d``: ``u_t + u u_x + u_xx + u_xxxx = 0`` on [0, 64) (PDEArena's box), 256 points, batch
  64, dt 0.1, 20 time units after a burn-in of 72; Exponax ``KuramotoSivashinskyConservative``
  (the same conservative nonlinearity ``-(u²)_x/2``);
* ``burgers1d``: ``u_t + (u²/2)_x = nu u_xx``, nu = 0.01/pi (sciops' default) on [0, 1),
  256 points, batch 64, dt 2e-3 (4e-3 is marginal, 8e-3 unstable for both), 0.5 time units
  from PDEBench's initial condition; Exponax ``Burgers(conservative=True)``;
* ``ks2d``: ``u_t + |grad u|²/2 + Lap u + Lap² u = 0`` on [0, 60)² (APEBench's box), 128²,
  batch 16, dt 0.1 (Exponax's usual KS step), 5 time units after a burn-in of 50. Exponax's
  ``KuramotoSivashinsky`` has ``d⁴/dx⁴ + d⁴/dy⁴`` in place of ``Lap²`` in 2D (a different
  equation), so the peer is an Exponax ``BaseStepper`` subclass assembled from Exponax's
  parts: ``-L - L²`` with ``L`` its ``build_laplace_operator``, and its
  ``GradientNormNonlinearFun``, whose ``zero_mode_fix`` (the box average of the nonlinearity
  removed) follows what the sciops family does (``nonlinearity_mean_removed``).

Exponax keeps the modes ``|m| <= dealiasing_fraction * (N//2) - 1`` and sciops ``|m| <= N/3``;
with the nominal 2/3 Exponax drops one more mode per axis (84 instead of 85 at N=256, 41
instead of 42 at 128). The Exponax runs therefore use ``dealiasing_fraction = (N//3 + 1.5) /
(N//2)``, which keeps exactly the sciops modes; ``agreement_exponax_default_dealiasing``
shows what the nominal 2/3 changes. Exponax's coefficients come from its own contour (16
points, radius 1, in the state's precision); sciops' from its own (double precision, cast).

Sections per case, all written to ``benchmarks/results/exponax.json``:

1. equation: the largest relative difference of the two linear symbols and of the two
   nonlinear terms ``N(u0)`` (float64), and the modes each dealiasing keeps;
2. accuracy, float64 (``jax_enable_x64``): the error of each code at dt after the horizon
   against its own ETDRK4 solution at dt/16, the agreement of the two at dt and of the two
   references; the error is the relative L2 norm of the mean-free field per sample,
   averaged over the batch (a 2D KS mean that drifts is compared apart, as
   ``mean_max_abs_diff``); the initial fields are shared (sciops' sampler, burnt in by sciops in
   float64, mean removed);
3. timing, float32 (JAX's default): milliseconds per step, medians over interleaved repeats
   of a block of steps, wall and process CPU clocks. sciops: the Fourier-space loop
   ``u_hat = step(u_hat, ode.tendency(u_hat))`` and ``pde.solve``; Exponax (after JIT warm-up,
   ``jax.block_until_ready``): ``lax.scan`` over ``vmap(stepper.step_fourier)`` (the
   like-for-like loop), ``exponax.repeat(vmap(stepper))`` (its documented rollout, physical
   states, one transform pair more per step) and a Python loop over ``jit(vmap(stepper))``.
   The 1D cases are also timed at batch 1024 (``large_batch``: the batch of 64 x 256 points
   leaves per-operation overhead in charge). Also the float32 error of each code against
   the float64 references;
4. profile: sciops' step under the torch profiler by operation (self CPU, ms per step) and
   the field transforms per step of both codes (Exponax's counted in its jaxpr).

Both codes get the same thread count: ``torch.set_num_threads(N)`` and ``XLA_FLAGS=
--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=N``; the JAX work runs in
spawned children (x64 for accuracy, x32 for timing) that read these flags at import. With one
thread the headline clock is process CPU time (the machine may be shared), else wall time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine_info, timed, write_json  # noqa: E402

from sciops import integrators, pdes, spectral  # noqa: E402

REPO = HERE.parent
SEED = 0
REF_REFINE = 16  # reference step = dt / REF_REFINE

CASES: dict[str, dict[str, Any]] = {
    "ks1d": {
        "pde": "ks1d", "params": {"length": 64.0, "nu": 1.0, "resolution": 256},
        "batch": 64, "dt": 0.1, "horizon": 20.0, "burn_in": 72.0, "burn_in_dt": 0.05,
        "timing_steps": 200, "profile_steps": 50, "large_batch": 1024,
        "exponax": "exponax.stepper.KuramotoSivashinskyConservative(1, L, N, dt, "
                   "convection_scale=1, second_order_scale=1, fourth_order_scale=nu, order=4)",
    },
    "burgers1d": {
        "pde": "burgers1d", "params": {"length": 1.0, "nu": 0.01 / math.pi, "resolution": 256},
        "batch": 64, "dt": 2e-3, "horizon": 0.5, "burn_in": 0.0, "burn_in_dt": None,
        "timing_steps": 200, "profile_steps": 50, "large_batch": 1024,
        "exponax": "exponax.stepper.Burgers(1, L, N, dt, diffusivity=nu, convection_scale=1, "
                   "conservative=True, order=4)",
    },
    "ks2d": {
        "pde": "ks2d", "params": {"length": 60.0, "resolution": 128},
        "batch": 16, "dt": 0.1, "horizon": 5.0, "burn_in": 50.0, "burn_in_dt": 0.05,
        "timing_steps": 20, "profile_steps": 5,
        "exponax": "BaseStepper subclass: linear -Lap - Lap² (exponax.spectral."
                   "build_laplace_operator), nonlinear exponax.nonlin_fun."
                   "GradientNormNonlinearFun(zero_mode_fix=<as sciops>), order=4",
    },
}


# --- the peer ----------------------------------------------------------------------------------

def import_exponax() -> Any:
    """The installed Exponax package, not this file (``benchmarks/`` is ``sys.path[0]`` when
    the script runs, where ``import exponax`` would find this very module)."""
    if "exponax" in sys.modules:
        return sys.modules["exponax"]
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    try:
        import exponax
    finally:
        sys.path[:] = saved
    return exponax


def exponax_installed() -> bool:
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    try:
        return importlib.util.find_spec("exponax") is not None
    finally:
        sys.path[:] = saved


def matched_fraction(n: int) -> float:
    """Exponax ``dealiasing_fraction`` keeping the sciops modes ``|m| <= n/3`` exactly (Exponax
    keeps ``|m| <= fraction * (n//2) - 1``)."""
    return (n // 3 + 1.5) / (n // 2)


def exponax_stepper(name: str, p: Any, dt: float, fraction: float) -> Any:
    """The Exponax stepper of case ``name`` for sciops parameters ``p``."""
    ex = import_exponax()
    L, N = p.length, p.resolution
    common = {"order": 4, "dealiasing_fraction": fraction}
    if name == "ks1d":
        return ex.stepper.KuramotoSivashinskyConservative(
            1, L, N, dt, convection_scale=1.0, second_order_scale=1.0,
            fourth_order_scale=p.nu, **common)
    if name == "burgers1d":
        return ex.stepper.Burgers(1, L, N, dt, diffusivity=p.nu, convection_scale=1.0,
                                  conservative=True, **common)
    if name == "ks2d":
        return isotropic_ks_class()(2, L, N, dt, zero_mode_fix=sciops_mean_free(name),
                                    **common)
    raise KeyError(name)


def sciops_mean_free(name: str) -> bool:
    """Whether the sciops family removes the box average from its nonlinearity (Exponax's
    ``zero_mode_fix``): its ``N`` of a random field has no mean mode."""
    pde = pdes.get(CASES[name]["pde"])
    p = case_params(name, "float64")
    u = pde.sample_inputs(p, 1, torch.Generator().manual_seed(SEED + 1))["u0"]
    n_hat = pde.ode(p).nonlinear(spectral.rfft(u[:, None], pde.ndim))
    return bool(n_hat.flatten()[0].abs() <= 1e-12 * n_hat.abs().max())


_KS_CLASS: list[type] = []


def isotropic_ks_class() -> type:
    """Exponax stepper for ``u_t + |grad u|²/2 + Lap u + Lap² u = 0`` from Exponax's parts."""
    if _KS_CLASS:
        return _KS_CLASS[0]
    ex = import_exponax()

    class IsotropicKuramotoSivashinsky(ex.BaseStepper):
        dealiasing_fraction: float
        zero_mode_fix: bool

        def __init__(self, num_spatial_dims: int, domain_extent: float, num_points: int,
                     dt: float, *, order: int = 4, dealiasing_fraction: float = 2 / 3,
                     zero_mode_fix: bool = True):
            self.dealiasing_fraction = dealiasing_fraction
            self.zero_mode_fix = zero_mode_fix
            super().__init__(num_spatial_dims, domain_extent, num_points, dt, num_channels=1,
                             order=order)

        def _build_linear_operator(self, derivative_operator):
            lap = ex.spectral.build_laplace_operator(derivative_operator, order=2)
            return -lap - lap * lap

        def _build_nonlinear_fun(self, derivative_operator):
            return ex.nonlin_fun.GradientNormNonlinearFun(
                self.num_spatial_dims, self.num_points, derivative_operator=derivative_operator,
                dealiasing_fraction=self.dealiasing_fraction, zero_mode_fix=self.zero_mode_fix,
                scale=1.0)

    _KS_CLASS.append(IsotropicKuramotoSivashinsky)
    return IsotropicKuramotoSivashinsky


def exponax_rollout(stepper: Any, steps: int) -> Callable:
    """``u (batch, 1, n...) -> u after steps`` with Exponax's ``repeat`` (jitted, physical)."""
    import jax
    ex = import_exponax()
    return jax.jit(ex.repeat(jax.vmap(stepper), steps))


def exponax_fourier(stepper: Any, steps: int) -> Callable:
    """``u_hat -> u_hat after steps``: ``lax.scan`` over the batched ``step_fourier``."""
    import jax
    batched = jax.vmap(stepper.step_fourier)

    def run(u_hat: Any) -> Any:
        return jax.lax.scan(lambda c, _: (batched(c), None), u_hat, None, length=steps)[0]
    return jax.jit(run)


# --- sciops ------------------------------------------------------------------------------------

def case_params(name: str, dtype: str, **changes: Any) -> Any:
    case = CASES[name]
    base = {**case["params"], "dt": case["dt"], "t_final": case["horizon"], "n_records": 1,
            "dtype": dtype}
    return pdes.get(case["pde"]).make_params({**base, **changes})


def sciops_loop(pde: Any, p: Any, u0: torch.Tensor) -> tuple[Callable[[int], torch.Tensor],
                                                               Callable[[torch.Tensor],
                                                                        torch.Tensor]]:
    """``run(k)``: k ETDRK4 steps from ``u0`` in Fourier space; ``field(u_hat)``: to the grid."""
    ode = pde.ode(p)
    grid = tuple(u0.shape[1:])
    u_hat0 = spectral.rfft(u0[:, None].to(p.torch_dtype), pde.ndim)
    step = integrators.stepper(ode, "etdrk4", p.dt, like=u_hat0)

    def run(k: int) -> torch.Tensor:
        u = u_hat0
        for _ in range(k):
            u = step(u, ode.tendency(u))
        return u

    def field(u_hat: torch.Tensor) -> torch.Tensor:
        return spectral.irfft(u_hat, grid)[:, 0]
    return run, field


def initial_fields(name: str) -> np.ndarray:
    """The shared initial fields (batch, n...), float64: the family's sampler, burnt in by
    sciops ETDRK4 in float64 where the case has a burn-in, mean removed then."""
    case = CASES[name]
    pde = pdes.get(case["pde"])
    p = case_params(name, "float64")
    u0 = pde.sample_inputs(p, case["batch"], torch.Generator().manual_seed(SEED))["u0"]
    if case["burn_in"] > 0:
        burn = p.replace(t_final=case["burn_in"], dt=case["burn_in_dt"])
        u0 = pde.solve(burn, {"u0": u0})["u"][:, -1]
        u0 = u0 - u0.mean(dim=tuple(range(1, u0.ndim)), keepdim=True)
    return u0.numpy()


# --- measuring ---------------------------------------------------------------------------------

def _fluct(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=tuple(range(1, a.ndim)), keepdims=True)


def rel_l2(a: np.ndarray, ref: np.ndarray) -> float:
    """Relative L2 norm of ``a - ref`` without the spatial means, per sample, batch mean."""
    d, r = _fluct(np.asarray(a, np.float64)), _fluct(np.asarray(ref, np.float64))
    ax = tuple(range(1, d.ndim))
    return float(np.mean(np.sqrt(((d - r) ** 2).sum(ax) / (r**2).sum(ax))))


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    ax = tuple(range(1, a.ndim))
    return float(np.abs(a.mean(ax) - b.mean(ax)).max())


def _setup_child(threads: int, x64: bool) -> Any:
    torch.set_num_threads(threads)
    import jax
    if x64:
        jax.config.update("jax_enable_x64", True)
    return jax


# --- child: equation and float64 accuracy ------------------------------------------------------

def accuracy_child(name: str, threads: int) -> dict[str, Any]:
    jax = _setup_child(threads, x64=True)
    import jax.numpy as jnp
    ex = import_exponax()
    case = CASES[name]
    pde = pdes.get(case["pde"])
    p = case_params(name, "float64")
    n, d, dt = p.resolution, pde.ndim, case["dt"]
    steps = round(case["horizon"] / dt)
    t0 = time.perf_counter()
    u0 = initial_fields(name)
    burn_s = time.perf_counter() - t0
    fraction = matched_fraction(n)
    stepper = exponax_stepper(name, p, dt, fraction)

    # 1. the same equation: symbols, nonlinear terms, kept modes
    deriv = ex.spectral.build_derivative_operator(d, p.length, n)
    lin_e = np.asarray(stepper._build_linear_operator(deriv))[0]
    lin_s = pde.symbol(p).numpy()[0]
    u0_hat = spectral.rfft(torch.from_numpy(u0)[:, None], d)
    nl_s = pde.ode(p).nonlinear(u0_hat).numpy()
    nl_fun = stepper._build_nonlinear_fun(deriv)
    nl_e = np.asarray(jax.vmap(nl_fun)(jnp.asarray(u0_hat.numpy())))
    default_mask = ex.nonlin_fun.GradientNormNonlinearFun(
        d, n, derivative_operator=deriv, dealiasing_fraction=2 / 3).dealiasing_mask
    m = np.fft.rfftfreq(n, 1.0 / n)

    def kept(mask: Any) -> int:
        row = np.asarray(mask).reshape(-1, n // 2 + 1)[0].astype(bool)
        return int(m[row].max())
    equation = {
        "linear_max_rel_diff": float(np.abs(lin_e - lin_s).max() / np.abs(lin_s).max()),
        "nonlinear_max_rel_diff": float(np.abs(nl_e - nl_s).max() / np.abs(nl_s).max()),
        "kept_modes_per_axis": {
            "sciops": kept(spectral.dealias_mask((n,) * d)),
            "exponax_used": kept(nl_fun.dealiasing_mask),
            "exponax_default_2/3": kept(default_mask)},
        "exponax_dealiasing_fraction": fraction,
        "nonlinearity_mean_removed": sciops_mean_free(name),
    }

    # 2. float64 errors at the horizon
    def run_exponax(h: float, k: int, frac: float = fraction) -> tuple[np.ndarray, float]:
        roll = exponax_rollout(exponax_stepper(name, p, h, frac), k)
        t = time.perf_counter()
        out = np.asarray(jax.block_until_ready(roll(jnp.asarray(u0[:, None]))))[:, 0]
        return out, time.perf_counter() - t

    def run_sciops(h: float) -> tuple[np.ndarray, float]:
        t = time.perf_counter()
        out = pde.solve(p.replace(dt=h), {"u0": torch.from_numpy(u0)})["u"][:, -1].numpy()
        return out, time.perf_counter() - t

    s_dt, s_dt_s = run_sciops(dt)
    s_ref, s_ref_s = run_sciops(dt / REF_REFINE)
    e_dt, _ = run_exponax(dt, steps)
    e_ref, e_ref_s = run_exponax(dt / REF_REFINE, steps * REF_REFINE)
    e_default, _ = run_exponax(dt, steps, 2 / 3)
    accuracy = {
        "dt": dt, "steps": steps, "reference_dt": dt / REF_REFINE,
        "error_sciops": rel_l2(s_dt, s_ref),
        "error_exponax": rel_l2(e_dt, e_ref),
        "error_sciops_vs_exponax_reference": rel_l2(s_dt, e_ref),
        "error_exponax_vs_sciops_reference": rel_l2(e_dt, s_ref),
        "agreement": rel_l2(e_dt, s_dt),
        "references_agreement": rel_l2(e_ref, s_ref),
        "agreement_exponax_default_dealiasing": rel_l2(e_default, s_dt),
        "mean_max_abs_diff": mean_diff(e_dt, s_dt),
        "field_rms": float(np.sqrt((_fluct(s_ref) ** 2).mean())),
        "field_mean_at_horizon": float(s_ref.mean()),
        "wall_s": {"burn_in_and_sampling": burn_s, "sciops_dt": s_dt_s,
                   "sciops_reference": s_ref_s, "exponax_reference_incl_jit": e_ref_s},
    }
    return {"equation": equation, "accuracy": accuracy, "u0": u0,
            "references": {"sciops": s_ref, "exponax": e_ref}}


# --- child: float32 timing ---------------------------------------------------------------------

def _count_transforms(jaxpr: Any, batch: int, ndim: int) -> dict[str, int]:
    """Field transforms in a jaxpr: each ``fft`` of an operand ``(batch, c, n...)`` is
    ``c`` transforms of one batched field."""
    import jax
    counts: dict[str, int] = {}

    def walk(jx: Any) -> None:
        for eqn in jx.eqns:
            if eqn.primitive.name == "fft":
                shape = eqn.invars[0].aval.shape
                ft = eqn.params["fft_type"]
                kind = getattr(ft, "name", None) or jax.lax.FftType(int(ft)).name
                kind = kind.lower()
                counts[kind] = counts.get(kind, 0) + math.prod(shape[:-ndim]) // batch
            for v in eqn.params.values():
                for sub in (v if isinstance(v, (list, tuple)) else [v]):
                    inner = getattr(sub, "jaxpr", None)
                    if inner is not None:
                        walk(inner if hasattr(inner, "eqns") else inner.jaxpr)
    walk(jaxpr.jaxpr)
    return counts


def _profile_sciops(run: Callable[[int], Any], steps: int) -> dict[str, Any]:
    """Self CPU ms per step of the sciops loop by operation kind, and FFT calls per step."""
    from torch.profiler import ProfilerActivity, profile
    run(2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(steps)
    groups = {"fft c2r (inverse)": ("aten::_fft_c2r",), "fft r2c (forward)": ("aten::_fft_r2c",),
              "fft c2c": ("aten::_fft_c2c",), "copy/clone": ("aten::copy_", "aten::clone"),
              "elementwise": ("aten::mul", "aten::add", "aten::sub", "aten::addcmul",
                              "aten::addcmul_", "aten::mul_", "aten::add_", "aten::pow",
                              "aten::neg", "aten::div"),
              "stack/cat": ("aten::cat", "aten::stack")}
    ms: dict[str, float] = {k: 0.0 for k in groups}
    ms["other"] = 0.0
    calls: dict[str, float] = {}
    total = 0.0
    for ev in prof.key_averages():
        t = ev.self_cpu_time_total / 1e3 / steps
        total += t
        key = next((g for g, names in groups.items() if ev.key in names), "other")
        ms[key] += t
        if ev.key.startswith("aten::_fft_"):
            calls[ev.key] = ev.count / steps
    return {"self_cpu_ms_per_step": ms, "total_ms_per_step_under_profiler": total,
            "fft_calls_per_step": calls,
            "note": "each sciops FFT call transforms one batched field; the profiler inflates "
                    "times, read the split as fractions"}


def interleaved_ms(impls: dict[str, Callable[[], Any]], steps: int, repeats: int
                   ) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Milliseconds per step of each of ``impls`` (each runs ``steps`` steps): medians (and
    minima) over ``repeats`` rounds in rotating order, after two warm-up calls (JIT
    compilation, FFT plans, caches); also the seconds of each first call."""
    first: dict[str, float] = {}
    for key, fn in impls.items():
        first[key] = timed(fn)[1]
        fn()
    samples: dict[str, list[tuple[float, float]]] = {key: [] for key in impls}
    names = list(impls)
    for r in range(repeats):  # interleaved, the order rotating, so load changes hit all alike
        for key in names[r % len(names):] + names[:r % len(names)]:
            _, wall, cpu = timed(impls[key])
            samples[key].append((1e3 * wall / steps, 1e3 * cpu / steps))
    ms = {key: {"wall": statistics.median(s[0] for s in v),
                "cpu": statistics.median(s[1] for s in v),
                "wall_min": min(s[0] for s in v), "cpu_min": min(s[1] for s in v)}
          for key, v in samples.items()}
    return ms, first


def timing_child(name: str, threads: int, u0: np.ndarray, repeats: int) -> dict[str, Any]:
    jax = _setup_child(threads, x64=False)
    import jax.numpy as jnp
    ex = import_exponax()
    case = CASES[name]
    pde = pdes.get(case["pde"])
    k = case["timing_steps"]
    p = case_params(name, "float32")
    d, dt = pde.ndim, case["dt"]
    axes = tuple(range(-d, 0))
    horizon = round(case["horizon"] / dt)
    u32 = u0.astype(np.float32)
    stepper = exponax_stepper(name, p, dt, matched_fraction(p.resolution))

    s_run, s_field = sciops_loop(pde, p, torch.from_numpy(u32))
    p_solve = p.replace(t_final=k * dt)
    u_t = torch.from_numpy(u32)
    x0 = jnp.asarray(u32[:, None])
    x0_hat = jnp.fft.rfftn(x0, axes=axes)
    fourier, rollout = exponax_fourier(stepper, k), exponax_rollout(stepper, k)
    call = jax.jit(jax.vmap(stepper))

    def loop_call() -> Any:
        x = x0
        for _ in range(k):
            x = call(x)
        return jax.block_until_ready(x)

    impls: dict[str, Callable[[], Any]] = {
        "sciops": lambda: s_run(k),
        "sciops_solve": lambda: pde.solve(p_solve, {"u0": u_t}),
        "exponax_fourier": lambda: jax.block_until_ready(fourier(x0_hat)),
        "exponax_repeat": lambda: jax.block_until_ready(rollout(x0)),
        "exponax_call": loop_call,
    }
    ms, first = interleaved_ms(impls, k, repeats)

    large: dict[str, Any] | None = None
    if case.get("large_batch"):  # the same steps on a larger batch (the 1D cases)
        big = np.tile(u32, (case["large_batch"] // case["batch"],) + (1,) * d)
        kb = max(k // 8, 10)
        b_run, _ = sciops_loop(pde, p, torch.from_numpy(big))
        b_fourier = exponax_fourier(stepper, kb)
        b_hat = jnp.fft.rfftn(jnp.asarray(big[:, None]), axes=axes)
        b_ms, _ = interleaved_ms({"sciops": lambda: b_run(kb), "exponax_fourier":
                                  lambda: jax.block_until_ready(b_fourier(b_hat))}, kb, repeats)
        large = {"batch": int(big.shape[0]), "steps_per_block": kb, "ms_per_step": b_ms,
                 "sciops_over_exponax_fourier": {
                     c: b_ms["exponax_fourier"][c] / b_ms["sciops"][c] for c in ("cpu", "wall")}}

    # float32 results at the horizon, for the error against the float64 references
    s32 = s_field(s_run(horizon)).double().numpy()
    e32 = np.asarray(jax.block_until_ready(exponax_rollout(stepper, horizon)(x0)))[:, 0]

    transforms = _count_transforms(
        jax.make_jaxpr(jax.vmap(stepper.step_fourier))(x0_hat), case["batch"], d)
    return {
        "ms_per_step": ms, "first_call_s": first, "steps_per_block": k, "repeats": repeats,
        "large_batch": large,
        "cpu_over_wall": {key: ms[key]["cpu"] / ms[key]["wall"] for key in ms},
        "float32_fields": {"sciops": s32, "exponax": e32},
        "profile": {"sciops": _profile_sciops(s_run, case["profile_steps"]),
                    "exponax_field_transforms_per_step": transforms},
        "dtype": {"sciops": str(s_run(1).dtype), "exponax": str(fourier(x0_hat).dtype)},
        "jax_devices": [str(dv) for dv in jax.devices()],
        "versions": {"jax": jax.__version__, "exponax": ex.__version__},
    }


# --- driver ------------------------------------------------------------------------------------

def _in_child(fn: Callable, *args: Any) -> Any:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def run_case(name: str, threads: int, repeats: int) -> dict[str, Any]:
    acc = _in_child(accuracy_child, name, threads)
    tim = _in_child(timing_child, name, threads, acc["u0"], repeats)
    refs = acc["references"]
    f32 = tim.pop("float32_fields")
    ms = tim["ms_per_step"]
    ratios = {f"sciops_over_{peer}": {clock: ms[peer][clock] / ms["sciops"][clock]
                                      for clock in ("cpu", "wall")}
              for peer in ("exponax_fourier", "exponax_repeat", "exponax_call")}
    case = CASES[name]
    return {
        "setting": {**case, "grid": [case["params"]["resolution"]] * pdes.get(case["pde"]).ndim},
        "equation": acc["equation"],
        "accuracy_float64": acc["accuracy"],
        "accuracy_float32": {
            "error_sciops": rel_l2(f32["sciops"], refs["sciops"]),
            "error_exponax": rel_l2(f32["exponax"], refs["exponax"]),
            "agreement": rel_l2(f32["exponax"], f32["sciops"])},
        "timing_float32": tim,
        "throughput_ratio": ratios,
    }


def print_report(results: dict[str, Any]) -> None:
    clock = results["settings"]["headline_clock"]
    other = "wall" if clock == "cpu" else "cpu"
    print(f"\nthreads {results['settings']['threads']}; times: {clock} clock, {other} in "
          "brackets; throughput ratio = Exponax ms/step / sciops ms/step (> 1: sciops faster)")
    head = (f"{'case':<10}{'err sciops':>11}{'err exponax':>12}{'agree':>9}{'ref agree':>10}"
            f"{'f32 err s':>10}{'f32 err e':>10}{'sciops ms':>16}{'exponax ms':>16}"
            f"{'ratio':>15}{'ratio repeat':>15}")
    print(head)
    for name, r in results["cases"].items():
        a, a32, t = r["accuracy_float64"], r["accuracy_float32"], r["timing_float32"]
        ms, ratio = t["ms_per_step"], r["throughput_ratio"]
        cell = {k: f"{v[clock]:.3g} ({v[other]:.3g})" for k, v in ms.items()}
        rcell = {k: f"{v[clock]:.2f} ({v[other]:.2f})" for k, v in ratio.items()}
        print(f"{name:<10}{a['error_sciops']:>11.2e}{a['error_exponax']:>12.2e}"
              f"{a['agreement']:>9.1e}{a['references_agreement']:>10.1e}"
              f"{a32['error_sciops']:>10.2e}{a32['error_exponax']:>10.2e}"
              f"{cell['sciops']:>16}{cell['exponax_fourier']:>16}"
              f"{rcell['sciops_over_exponax_fourier']:>15}"
              f"{rcell['sciops_over_exponax_repeat']:>15}")
    for name, r in results["cases"].items():
        t = r["timing_float32"]
        prof = t["profile"]
        calls = sum(prof["sciops"]["fft_calls_per_step"].values())
        line = (f"{name}: field transforms per step sciops {calls:g}, Exponax "
                f"{sum(prof['exponax_field_transforms_per_step'].values())}")
        if t["large_batch"]:
            lb = t["large_batch"]
            line += (f"; batch {lb['batch']}: sciops {lb['ms_per_step']['sciops'][clock]:.3g} ms, "
                     f"Exponax {lb['ms_per_step']['exponax_fourier'][clock]:.3g} ms, ratio "
                     f"{lb['sciops_over_exponax_fourier'][clock]:.2f}")
        print(line)
    for name, r in results["cases"].items():
        e = r["equation"]
        print(f"{name}: symbols differ by {e['linear_max_rel_diff']:.1e}, N(u0) by "
              f"{e['nonlinear_max_rel_diff']:.1e} (relative); modes kept "
              f"{e['kept_modes_per_axis']}; default-2/3 Exponax vs sciops "
              f"{r['accuracy_float64']['agreement_exponax_default_dealiasing']:.1e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="threads of both codes (torch, XLA)")
    ap.add_argument("--repeats", type=int, default=15, help="interleaved timing repeats")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/exponax.json")
    args = ap.parse_args(argv)
    if not exponax_installed():
        print("exponax is not installed: .venv/bin/pip install jax exponax "
              "(or pip install -e '.[bench]')", file=sys.stderr)
        return 2
    # JAX reads XLA_FLAGS at import: only the spawned children import it, after this.
    xla = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={args.threads}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {xla}".strip()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "sciops vs Exponax: ETDRK4 error and time per step on the same PDEs",
        "machine": machine_info(),
        "settings": {
            "threads": args.threads, "XLA_FLAGS": os.environ["XLA_FLAGS"],
            "repeats": args.repeats, "seed": SEED, "reference_refinement": REF_REFINE,
            "method": "etdrk4 (both)",
            "error": "relative L2 of the mean-free field at the horizon per sample, mean over "
                     "the batch; error_<code>: against the same code at dt/16 in float64",
            "timing": "float32; ms per step = median over interleaved repeats of a block of "
                      "steps (after warm-up/JIT); wall and process CPU clocks",
            "headline_clock": "cpu" if args.threads == 1 else "wall",
            "headline_clock_why": "one thread: process CPU time estimates the wall time on an "
                                  "idle machine and ignores time descheduled by other load"
                                  if args.threads == 1 else "several threads: wall clock",
            "throughput_ratio": "Exponax ms/step over sciops ms/step (> 1: sciops faster); "
                                "exponax_fourier is the like-for-like Fourier-space loop",
        },
        "cases": {},
    }
    for name in args.cases:
        print(f"== {name}", flush=True)
        results["cases"][name] = run_case(name, args.threads, args.repeats)
        results["peer_versions"] = results["cases"][name]["timing_float32"]["versions"]
        write_json(args.out, results)  # partial results survive an interruption
    clock = results["settings"]["headline_clock"]
    results["summary"] = {
        name: {"error_sciops": r["accuracy_float64"]["error_sciops"],
               "error_exponax": r["accuracy_float64"]["error_exponax"],
               "agreement": r["accuracy_float64"]["agreement"],
               "ms_per_step_sciops": r["timing_float32"]["ms_per_step"]["sciops"][clock],
               "ms_per_step_exponax": r["timing_float32"]["ms_per_step"]["exponax_fourier"][clock],
               "throughput_ratio_sciops_over_exponax":
                   r["throughput_ratio"]["sciops_over_exponax_fourier"][clock],
               "clock": clock}
        for name, r in results["cases"].items()}
    results["total_wall_s"] = time.perf_counter() - start
    write_json(args.out, results)
    print_report(results)
    print(f"\nwrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
