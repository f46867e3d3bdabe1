"""Time integration of semilinear ODEs ``du/dt = L u + N(u) + f`` in Fourier space.

Every periodic PDE of sciops is stepped here. A state ``u`` is a spectral tensor (complex,
any shape, batch first); ``L`` is a diagonal symbol broadcastable to it (real for
dissipative terms, complex for odd derivatives); ``N`` a function of the state (the
dealiased nonlinear term, spectral); ``f`` an optional constant spectral forcing.

Steppers are pure functions built once per step size (their coefficients cached):

* ``etdrk1`` .. ``etdrk4`` — exponential time differencing Runge–Kutta (Cox & Matthews
  2002), with the phi-function coefficients evaluated in double precision, by their Taylor
  series where ``|L h| < 1`` (where the closed form cancels; Kassam & Trefethen 2005 use a
  contour integral instead), so they stay accurate where ``L h`` is near 0 and in float32
  states. Exact for ``N = const``: a constant forcing is integrated exactly.
* ``ifrk4`` — integrating-factor RK4; the forcing is moved into the steady state of the
  linear part (``u = v + u_s``, ``L u_s + f = 0`` where ``L != 0``) so the forced linear
  decay is exact too.
* ``cn`` — IMEX Crank–Nicolson: explicit Euler for ``N + f``, Crank–Nicolson for ``L``
  (the FNO data generator's first-order scheme, bit for bit).

:func:`trajectory` drives a stepper over record times with fixed or CFL-chosen steps, a
burn-in, one blow-up guard that names the diverged samples, and a progress callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["METHODS", "ORDER", "SemilinearODE", "phi", "stepper", "trajectory"]

ORDER = {"etdrk1": 1, "etdrk2": 2, "etdrk3": 3, "etdrk4": 4, "ifrk4": 4, "cn": 1}
METHODS = tuple(ORDER)

# Steps allowed per record interval by :func:`trajectory` (beyond: refused, not run for days).
MAX_STEPS = 1_000_000

# Terms of the Taylor series of phi_k used for |z| < 1: truncation below 1/20! ~ 4e-19.
_SERIES_TERMS = 20


@dataclass(frozen=True)
class SemilinearODE:
    """``du/dt = L u + N(u) + f`` for spectral states ``u`` (batch first).

    ``linear``: the symbol ``L`` (1/time), broadcastable to the state. ``nonlinear``:
    ``u -> N(u)``, same shape as ``u`` (None: zero). ``forcing``: constant ``f`` (None:
    zero). ``rate``: ``u -> (batch,)`` largest stable inverse step (1/time) for CFL steps,
    mostly called right after ``nonlinear`` on the same tensor (so it may reuse a value
    cached by it), and it must also work on a state ``nonlinear`` has not seen. ``size``:
    ``u -> (batch,)`` magnitude watched by the blow-up guard (default: the largest
    ``|u_k|``).
    """

    linear: Tensor
    nonlinear: Callable[[Tensor], Tensor] | None = None
    forcing: Tensor | None = None
    rate: Callable[[Tensor], Tensor] | None = None
    size: Callable[[Tensor], Tensor] | None = None

    def tendency(self, u: Tensor) -> Tensor | float:
        """``N(u) + f`` (0.0 when both vanish)."""
        out: Tensor | float = 0.0
        if self.nonlinear is not None:
            out = self.nonlinear(u)
        if self.forcing is not None:
            out = out + self.forcing
        return out

    def magnitude(self, u: Tensor) -> Tensor:
        if self.size is not None:
            return self.size(u)
        return u.abs().flatten(1).amax(1)


def phi(z: Tensor, k: int) -> Tensor:
    """``phi_k(z) = (e^z - sum_{j<k} z^j/j!) / z^k`` elementwise, in complex128.

    ``phi_0 = e^z``, ``phi_1 = (e^z - 1)/z``, ... For ``|z| >= 1`` by this closed form, as the
    recurrence ``phi_{j+1} = (phi_j - 1/j!) / z``; for ``|z| < 1``, where it cancels, by the
    Taylor series ``phi_k(z) = sum_j z^j / (j+k)!`` (relative error ~1e-15 everywhere).
    """
    return _phis(z, k)[k]


def _phis(z: Tensor, k: int) -> list[Tensor]:
    """``[phi_0(z), ..., phi_k(z)]`` of :func:`phi`; below ``|z| = 1`` the series gives
    ``phi_k`` and the stable ``phi_j = z phi_{j+1} + 1/j!`` the lower ones."""
    z = z.to(torch.complex128)
    out = [torch.exp(z)]
    near = z.abs() < 1.0
    z_far = torch.where(near, 1.0, z)
    for j in range(k):
        out.append((out[-1] - 1.0 / math.factorial(j)) / z_far)
    if k > 0 and bool(near.any()):
        x = z[near]
        series = torch.full_like(x, 1.0 / math.factorial(k + _SERIES_TERMS - 1))
        for j in reversed(range(_SERIES_TERMS - 1)):  # Horner
            series = series * x + 1.0 / math.factorial(j + k)
        for j in range(k, 0, -1):
            out[j][near] = series
            series = x * series + 1.0 / math.factorial(j - 1)
    return out


def _cast(c: Tensor, like: Tensor, real: bool) -> Tensor:
    """Coefficient in the state's precision; real when ``L`` is real (cheaper products)."""
    cdtype = like.dtype if like.is_complex() else torch.complex64
    return (c.real.to(cdtype.to_real()) if real else c.to(cdtype)).to(like.device)


Step = Callable[[Tensor, Tensor | float], Tensor]


def stepper(ode: SemilinearODE, method: str, dt: float, like: Tensor) -> Step:
    """One step of ``method`` with step ``dt``: ``step(u, n_u) -> u(t + dt)``.

    ``n_u = ode.tendency(u)`` is passed in (the driver needs it first for the CFL step).
    ``like`` is a state tensor giving the precision and device of the coefficients. Steps
    never write into ``u``, ``n_u`` or the values ``N`` is given or returns: the
    combinations are formed in place in temporaries of their own.
    """
    if method not in ORDER:
        raise ValueError(f"method={method!r}: choose one of {list(METHODS)}")
    L = ode.linear.to(like.device)
    real = not L.is_complex()
    z = L.to(torch.complex128) * dt
    N = ode.tendency

    def c(x: Tensor) -> Tensor:
        return _cast(x, like, real)

    if method == "cn":
        num, den = 1.0 + 0.5 * dt * L, 1.0 - 0.5 * dt * L

        def cn(u: Tensor, n_u: Tensor | float) -> Tensor:
            return (num * u + dt * n_u) / den
        return cn

    # phi_0 .. phi_k of L dt and L dt/2, as far as the method needs them
    linear = ode.nonlinear is None
    p = _phis(z, 1 if linear else {"ifrk4": 0, "etdrk1": 1, "etdrk2": 2}.get(method, 3))
    p_half = _phis(z / 2, 1 if method in ("etdrk3", "etdrk4") else 0)
    e, e2 = c(p[0]), c(p_half[0])
    if linear:  # e^{L dt} u + dt phi_1(L dt) f is the exact solution
        if ode.forcing is None:
            return lambda u, n_u: e * u
        forced = (dt * p[1] * ode.forcing.to(z.device)).to(like.dtype)
        return lambda u, n_u: e * u + forced

    if method == "ifrk4":
        return _ifrk4(ode, dt, e, e2, like)

    if method == "etdrk1":
        h1 = c(dt * p[1])
        return lambda u, n_u: torch.mul(e, u).addcmul_(h1, n_u)

    if method == "etdrk2":
        h1, h2 = c(dt * p[1]), c(dt * p[2])

        def etdrk2(u: Tensor, n_u: Tensor) -> Tensor:
            a = torch.mul(e, u).addcmul_(h1, n_u)
            return torch.addcmul(a, h2, N(a)).addcmul_(h2, n_u, value=-1)
        return etdrk2

    # Cox–Matthews third- and fourth-order weights: f1 = phi1 - 3 phi2 + 4 phi3,
    # f2 = phi2 - 2 phi3, f3 = -phi2 + 4 phi3 (times dt); q = dt/2 phi1(z/2).
    f1, f2, f3 = (c(dt * (p[1] - 3 * p[2] + 4 * p[3])), c(dt * (p[2] - 2 * p[3])),
                  c(dt * (4 * p[3] - p[2])))
    q, h1 = c(0.5 * dt * p_half[1]), c(dt * p[1])
    if method == "etdrk3":
        def etdrk3(u: Tensor, n_u: Tensor) -> Tensor:
            a = torch.mul(e2, u).addcmul_(q, n_u)
            n_a = N(a)
            eu = e * u
            b = torch.addcmul(eu, h1, n_a, value=2).addcmul_(h1, n_u, value=-1)
            return eu.addcmul_(f1, n_u).addcmul_(f2, n_a, value=4).addcmul_(f3, N(b))
        return etdrk3

    def etdrk4(u: Tensor, n_u: Tensor) -> Tensor:
        eu = e2 * u
        a = torch.addcmul(eu, q, n_u)
        n_a = N(a)
        n_b = N(eu.addcmul_(q, n_a))  # b
        cc = torch.mul(e2, a).addcmul_(q, n_b, value=2).addcmul_(q, n_u, value=-1)
        out = torch.mul(e, u).addcmul_(f1, n_u).addcmul_(f2, n_a, value=2)
        return out.addcmul_(f2, n_b, value=2).addcmul_(f3, N(cc))
    return etdrk4


def _ifrk4(ode: SemilinearODE, dt: float, e1: Tensor, e2: Tensor, like: Tensor) -> Step:
    """Integrating-factor RK4 on ``v = u - u_s``, ``u_s = -f/L`` where ``L != 0``; the part of
    ``f`` on ``L == 0`` modes stays in the explicit term ``g(v) = N(v + u_s) + f_0``."""
    L = ode.linear.to(like.device)
    f = ode.forcing
    steady = damped_f = explicit = None
    if f is not None:
        damped = L != 0
        f = f.to(like.device, like.dtype)
        steady = torch.where(damped, -f / torch.where(damped, L, 1.0), 0).to(like.dtype)
        damped_f = torch.where(damped, f, 0)
        explicit = torch.where(damped, 0, f)
        if not bool(explicit.any()):
            explicit = None

    def g(x: Tensor) -> Tensor:
        """``g`` of a stage value ``x`` of this step's own (turned into ``x + u_s``)."""
        n = ode.nonlinear(x if steady is None else x.add_(steady))
        return n if explicit is None else n + explicit

    def ifrk4(u: Tensor, n_u: Tensor) -> Tensor:
        v = u if steady is None else u - steady
        n1 = n_u if f is None else n_u - damped_f  # g(v) from N(u) + f
        n2 = g(torch.add(v, n1, alpha=0.5 * dt).mul_(e2))
        ev = e2 * v
        n3 = g(torch.add(ev, n2, alpha=0.5 * dt))
        n4 = g(ev.mul_(e2).addcmul_(e2, n3, value=dt))  # e1 v + e2 dt n3, with e2² = e1
        out = torch.add(v, n1, alpha=dt / 6).mul_(e1).addcmul_(e2, n2 + n3, value=dt / 3)
        out.add_(n4, alpha=dt / 6)
        return out if steady is None else out.add_(steady)
    return ifrk4


def trajectory(ode: SemilinearODE, u: Tensor, times: Sequence[float], *, method: str,
               dt: float | None = None, cfl: float | None = None, burn_in: float = 0.0,
               blowup: float = 1e4, name: str = "solver",
               callback: Callable[[float], None] | None = None,
               cfl_max: float | None = None, max_steps: int = MAX_STEPS,
               hint: str = "") -> Iterator[Tensor]:
    """Yield the state at each of ``times`` (increasing, ``times[0]`` first).

    The given ``u`` is the state at ``times[0] - burn_in``. Each interval between records
    (and the burn-in) is split into equal steps: ``ceil(span / dt)`` with a fixed ``dt``; with
    ``dt=None`` the step ``h`` is kept while ``ode.rate(u) * h <= cfl`` and otherwise re-chosen
    as ``cfl / ode.rate(u)``, shortened so the record time is hit exactly. Spans are
    ``float(times[j] - times[j-1])``: exact numbers (``fractions.Fraction``) give spans exact
    to the last bit. A sample whose ``ode.magnitude`` turns non-finite or
    exceeds ``blowup`` times its start (plus 1) raises
    :class:`~sciops.pdes.base.SolverDiverged` naming the batch-local samples.
    ``callback(fraction)`` reports progress in simulated time.

    Stability and cost guards, each raising :class:`~sciops.pdes.base.SolverDiverged` naming
    the samples (``hint``, e.g. which parameters to change, ends the too-fast message):

    * with a fixed ``dt``, ``cfl_max`` and ``ode.rate``: the CFL number ``rate(u) * h`` is
      checked at every record (the states the intervals start from, and the last one); above
      ``cfl_max`` the run stops and the message gives the largest acceptable ``dt``;
    * no record interval may take more than ``max_steps`` steps (fixed: ``span / dt``;
      adaptive: ``span * rate(u) / cfl`` when the step is chosen), so a too small ``dt`` or a
      too fast solution is refused instead of running for days; a non-finite ``rate`` is a
      blow-up.
    """
    from sciops.pdes.base import SolverDiverged

    if dt is None and (cfl is None or ode.rate is None):
        raise ValueError(f"{name}: adaptive steps need cfl and ode.rate; or give dt")
    limit = blowup * (ode.magnitude(u) + 1.0)
    cache: dict[float, Callable] = {}

    def step_fn(h: float) -> Callable:
        # record intervals of a linspace differ in the last bits: reuse the coefficients of
        # a step equal to round-off (the drift stays at round-off level too)
        for key, fn in cache.items():
            if abs(key - h) <= 1e-13 * h:
                return fn
        cache.clear()
        cache[h] = stepper(ode, method, h, u)
        return cache[h]

    tail = f"; {hint}" if hint else ""

    def check_cfl(state: Tensor, h: float, t: float) -> None:
        """Fixed steps: the CFL number ``rate * h`` of ``state``."""
        rate = ode.rate(state)
        number = rate * h
        bad = ~torch.isfinite(number) | (number > cfl_max)
        if bool(bad.any()):
            top = float(rate[torch.isfinite(rate)].max()) if bool(
                torch.isfinite(rate).any()) else math.inf
            raise SolverDiverged(
                f"{name}: fixed dt={h:.3g} breaks the CFL limit at t={t:g}: CFL number "
                f"{float(number[bad].max()):.3g} > {cfl_max:g}; use dt <= "
                f"{cfl_max / top:.3g} (or dt=None for CFL-adaptive steps)",
                torch.nonzero(bad).flatten().tolist())

    def too_many(span: float, steps: float, what: str, samples: list[int]) -> SolverDiverged:
        return SolverDiverged(
            f"{name}: the record interval {span:.3g} would take {steps:.3g} steps (limit "
            f"{max_steps:.0e}) of {what}", samples)

    def check(state: Tensor, t: float) -> None:
        size = ode.magnitude(state)
        bad = ~torch.isfinite(size) | (size > limit)
        if bool(bad.any()):
            raise SolverDiverged(
                f"{name} diverged before t={t:g} (solution {blowup:g}x its start or NaN); "
                f"reduce dt/cfl or raise resolution", torch.nonzero(bad).flatten().tolist())

    segments = ([(burn_in, float(times[0]))] if burn_in > 0 else []) + [
        (float(times[j] - times[j - 1]), float(times[j])) for j in range(1, len(times))]
    total = sum(span for span, _ in segments) or 1.0
    done = 0.0
    if burn_in <= 0:
        yield u
    check_fixed = dt is not None and cfl_max is not None and ode.rate is not None
    batch = list(range(u.shape[0])) if u.ndim else [0]
    t_start = float(times[0]) - burn_in
    for index, (span, t_end) in enumerate(segments):
        left, h, n_left = span, 0.0, 0
        if dt is not None:
            if span / dt > max_steps:
                raise too_many(span, span / dt, f"dt={dt:.3g}; raise dt", batch)
            n_left = max(1, math.ceil(span / dt - 1e-9))
            h = span / n_left
        first = True
        while True:
            n_u = ode.tendency(u)
            if check_fixed and first:
                check_cfl(u, h, t_start)
            first = False
            if dt is None:  # keep the step while it satisfies the CFL bound
                rates = ode.rate(u)
                rate = float(rates.max())
                if not math.isfinite(rate):
                    check(u, t_end)  # names the blown-up samples
                    raise SolverDiverged(f"{name} diverged before t={t_end:g} (CFL rate "
                                         f"{rate})", batch)
                if n_left == 0 or rate * h > cfl:
                    if left * rate / cfl > max_steps:
                        bad = (left * rates / cfl > max_steps).nonzero().flatten().tolist()
                        raise too_many(span, left * rate / cfl,
                                       f"cfl={cfl:g} / rate {rate:.3g} (too fast){tail}", bad)
                    n_left = max(1, math.ceil(left * rate / cfl - 1e-9)) if rate > 0 else 1
                    h = left / n_left
            u = step_fn(h)(u, n_u)
            n_left -= 1
            left -= h
            if n_left == 0:
                break
        check(u, t_end)
        t_start = t_end
        if check_fixed and index == len(segments) - 1:
            check_cfl(u, h, t_end)
        done += span
        if callback is not None:
            callback(done / total)
        yield u
