"""Time integration of semilinear ODEs ``du/dt = L u + N(u) + f`` in Fourier space.

Every periodic PDE of sciops is stepped here. A state ``u`` is a spectral tensor (complex,
any shape, batch first); ``L`` is a diagonal symbol broadcastable to it (real for
dissipative terms, complex for odd derivatives); ``N`` a function of the state (the
dealiased nonlinear term, spectral); ``f`` an optional constant spectral forcing.

Steppers are pure functions built once per step size (their coefficients cached):

* ``etdrk1`` .. ``etdrk4`` — exponential time differencing Runge–Kutta (Cox & Matthews
  2002), with the phi-function coefficients evaluated by the contour integral of Kassam &
  Trefethen (2005) in double precision, so they stay accurate where ``L h`` is near 0 and in
  float32 states. Exact for ``N = const``: a constant forcing is integrated exactly.
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

# Points on the circle of the Kassam–Trefethen contour integral, and its radius.
_CONTOUR_POINTS = 32
_CONTOUR_RADIUS = 1.0


@dataclass(frozen=True)
class SemilinearODE:
    """``du/dt = L u + N(u) + f`` for spectral states ``u`` (batch first).

    ``linear``: the symbol ``L`` (1/time), broadcastable to the state. ``nonlinear``:
    ``u -> N(u)``, same shape as ``u`` (None: zero). ``forcing``: constant ``f`` (None:
    zero). ``rate``: ``u -> (batch,)`` largest stable inverse step (1/time) for CFL steps,
    always called right after ``nonlinear`` on the same tensor (so it may return a value
    cached by it). ``size``: ``u -> (batch,)`` magnitude watched by the blow-up guard
    (default: the largest ``|u_k|``).
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
    """``phi_k(z) = (e^z - sum_{j<k} z^j/j!) / z^k`` by the contour integral (complex128).

    ``phi_0 = e^z``, ``phi_1 = (e^z - 1)/z``, ... Evaluated as the mean over a circle of
    radius 1 around each ``z``, which is exact for these entire functions and free of the
    cancellation of the closed form near ``z = 0``.
    """
    z = z.to(torch.complex128)
    if k == 0:
        return torch.exp(z)
    j = torch.arange(_CONTOUR_POINTS, dtype=torch.float64, device=z.device)
    r = _CONTOUR_RADIUS * torch.exp(2j * math.pi * (j + 0.5) / _CONTOUR_POINTS)
    w = z[..., None] + r
    taylor = sum(w**j / math.factorial(j) for j in range(k))
    return ((torch.exp(w) - taylor) / w**k).mean(-1)


def _cast(c: Tensor, like: Tensor, real: bool) -> Tensor:
    """Coefficient in the state's precision; real when ``L`` is real (cheaper products)."""
    cdtype = like.dtype if like.is_complex() else torch.complex64
    return (c.real.to(cdtype.to_real()) if real else c.to(cdtype)).to(like.device)


def stepper(ode: SemilinearODE, method: str, dt: float, like: Tensor
            ) -> Callable[[Tensor, Tensor | float], Tensor]:
    """One step of ``method`` with step ``dt``: ``step(u, n_u) -> u(t + dt)``.

    ``n_u = ode.tendency(u)`` is passed in (the driver needs it first for the CFL step).
    ``like`` is a state tensor giving the precision and device of the coefficients.
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

    if method == "ifrk4":
        return _ifrk4(ode, dt, c(phi(z, 0)), c(phi(z / 2, 0)))

    e, e2 = c(phi(z, 0)), c(phi(z / 2, 0))
    if method == "etdrk1":
        h1 = c(dt * phi(z, 1))

        def etdrk1(u: Tensor, n_u: Tensor | float) -> Tensor:
            return e * u + h1 * n_u
        return etdrk1

    if method == "etdrk2":
        h1, h2 = c(dt * phi(z, 1)), c(dt * phi(z, 2))

        def etdrk2(u: Tensor, n_u: Tensor | float) -> Tensor:
            a = e * u + h1 * n_u
            return a + h2 * (N(a) - n_u)
        return etdrk2

    # Cox–Matthews third- and fourth-order weights: f1 = phi1 - 3 phi2 + 4 phi3,
    # f2 = phi2 - 2 phi3, f3 = -phi2 + 4 phi3 (times dt); q = dt/2 phi1(z/2).
    p1, p2, p3 = phi(z, 1), phi(z, 2), phi(z, 3)
    f1, f2, f3 = (c(dt * (p1 - 3 * p2 + 4 * p3)), c(dt * (p2 - 2 * p3)),
                  c(dt * (4 * p3 - p2)))
    q, h1 = c(0.5 * dt * phi(z / 2, 1)), c(dt * p1)
    if method == "etdrk3":
        def etdrk3(u: Tensor, n_u: Tensor | float) -> Tensor:
            a = e2 * u + q * n_u
            n_a = N(a)
            b = e * u + h1 * (2 * n_a - n_u)
            return e * u + f1 * n_u + 4 * f2 * n_a + f3 * N(b)
        return etdrk3

    def etdrk4(u: Tensor, n_u: Tensor | float) -> Tensor:
        eu = e2 * u
        a = eu + q * n_u
        n_a = N(a)
        b = eu + q * n_a
        n_b = N(b)
        cc = e2 * a + q * (2 * n_b - n_u)
        return e * u + f1 * n_u + 2 * f2 * (n_a + n_b) + f3 * N(cc)
    return etdrk4


def _ifrk4(ode: SemilinearODE, dt: float, e1: Tensor, e2: Tensor
           ) -> Callable[[Tensor, Tensor | float], Tensor]:
    """Integrating-factor RK4 on ``v = u - u_s``, ``u_s = -f/L`` where ``L != 0``; the part of
    ``f`` on ``L == 0`` modes stays in the explicit term."""
    L = ode.linear.to(e1.device)
    f = ode.forcing
    if f is None:
        steady, explicit = None, None
    else:
        damped = L != 0
        steady = torch.where(damped, -f / torch.where(damped, L, 1.0), 0)
        explicit = torch.where(damped, 0, f)

    def g(v: Tensor) -> Tensor | float:
        n: Tensor | float = 0.0
        if ode.nonlinear is not None:
            n = ode.nonlinear(v if steady is None else v + steady)
        return n if explicit is None else n + explicit

    def ifrk4(u: Tensor, n_u: Tensor | float) -> Tensor:
        v = u if steady is None else u - steady
        k1 = dt * (n_u if f is None else n_u - f + explicit)  # g(v) from N(u) + f
        k2 = dt * g(e2 * (v + 0.5 * k1))
        k3 = dt * g(e2 * v + 0.5 * k2)
        k4 = dt * g(e1 * v + e2 * k3)
        v = e1 * v + (e1 * k1 + 2.0 * e2 * (k2 + k3) + k4) / 6.0
        return v if steady is None else v + steady
    return ifrk4


def trajectory(ode: SemilinearODE, u: Tensor, times: Sequence[float], *, method: str,
               dt: float | None = None, cfl: float | None = None, burn_in: float = 0.0,
               blowup: float = 1e4, name: str = "solver",
               callback: Callable[[float], None] | None = None) -> Iterator[Tensor]:
    """Yield the state at each of ``times`` (increasing, ``times[0]`` first).

    The given ``u`` is the state at ``times[0] - burn_in``. Each interval between records
    (and the burn-in) is split into equal steps: ``ceil(span / dt)`` with a fixed ``dt``, or
    with ``dt=None`` re-chosen before every step as ``cfl / ode.rate(u)`` and shortened so
    the record time is hit exactly. A sample whose ``ode.magnitude`` turns non-finite or
    exceeds ``blowup`` times its start (plus 1) raises
    :class:`~sciops.pdes.base.SolverDiverged` naming the batch-local samples.
    ``callback(fraction)`` reports progress in simulated time.
    """
    from sciops.pdes.base import SolverDiverged

    if dt is None and (cfl is None or ode.rate is None):
        raise ValueError(f"{name}: adaptive steps need cfl and ode.rate; or give dt")
    limit = blowup * (ode.magnitude(u) + 1.0)
    cache: dict[float, Callable] = {}

    def step_fn(h: float) -> Callable:
        if h not in cache:
            cache.clear()
            cache[h] = stepper(ode, method, h, u)
        return cache[h]

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
    for span, t_end in segments:
        left, h, n_left = span, 0.0, 0
        if dt is not None:
            n_left = max(1, math.ceil(span / dt - 1e-9))
            h = span / n_left
        while True:
            n_u = ode.tendency(u)
            if dt is None:  # keep the step while it satisfies the CFL bound
                rate = float(ode.rate(u).max())
                if n_left == 0 or rate * h > cfl:
                    n_left = max(1, math.ceil(left * rate / cfl - 1e-9)) if rate > 0 else 1
                    h = left / n_left
            u = step_fn(h)(u, n_u)
            n_left -= 1
            left -= h
            if n_left == 0:
                break
        check(u, t_end)
        done += span
        if callback is not None:
            callback(done / total)
        yield u
