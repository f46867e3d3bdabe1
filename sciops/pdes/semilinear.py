"""PDEs defined once: ``u_t = L u + N(u) + f(x)`` on a periodic box in 1, 2 or 3D.

A family writes its linear part ``L`` and nonlinear part ``N`` once, as functions of the
fields (a dict of tensors by name) and a derivative provider ``d``
(:mod:`sciops.derivatives`), plus its parameters, initial-condition sampler and stored
fields. Everything else is derived from those two functions:

* the diagonal Fourier symbol of ``L`` (``L`` applied to ones under :class:`Symbols`) and
  the 2/3-dealiased ``N`` in spectral space: the time steppers of
  :mod:`sciops.integrators` (ETDRK1–4, IFRK4, IMEX Crank–Nicolson) generate the data;
* the grid residual (spectral derivatives in space, 4th-order differences in time) for
  PINO-style losses, and the pointwise autograd residual for PINNs;
* the domain (box, periodic coordinates, initial condition), the stored variables, their
  units and coordinates.

A complete family (Burgers, see :mod:`sciops.pdes.catalog`)::

    @register
    class Burgers1D(SemilinearPDE):
        name, ndim = "burgers1d", 1
        fields = {"u": ("length/time", "velocity")}

        @dataclass(frozen=True)
        class Params(SemilinearParams):
            nu: float = param(0.01, "viscosity (length²/time)", range=(0, None))

        def linear(self, u, d, p):
            return {"u": p.nu * d.laplacian(u["u"])}

        def nonlinear(self, u, d, p):
            return {"u": -0.5 * d.x(u["u"] ** 2)}

        def initial(self, p, n, generator):
            return {"u": smooth_random(p, n, generator)}

``L`` must be diagonal in the fields (each field's linear term involves that field only);
couplings between fields go into ``N``. Arrays are indexed ``[x, y, z]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from sciops import autodiff, integrators, random_fields, spectral
from sciops.derivatives import AXES, Derivatives, Pointwise, Spectral, Symbols, time_derivative
from sciops.pdes.base import (
    PDE,
    Domain,
    Params,
    PointSample,
    Variable,
    dirichlet,
    param,
    register,
)

Fields = dict[str, Tensor]


@dataclass(frozen=True)
class SemilinearParams(Params):
    """Grid, time span and integrator shared by every semilinear family; families add
    their coefficients and may override these defaults."""

    length: float = param(1.0, "box side (length)", range=(0.0, None), open_low=True)
    resolution: int = param(128, "solver grid points per axis", range=(4, 8192))
    output_resolution: int | None = param(
        None, "stored grid points per axis (divides resolution; None = resolution)",
        range=(1, 8192))
    t_final: float = param(1.0, "time span recorded after the burn-in", range=(0.0, None),
                           open_low=True)
    n_records: int = param(100, "stored times after t=0, evenly spaced", range=(1, 1_000_000))
    t_burn_in: float = param(0.0, "time integrated and discarded before t=0", range=(0.0, None))
    dt: float = param(1e-3, "time step (each record interval is split into equal steps "
                      "no longer than dt)", range=(0.0, None), open_low=True)
    method: str = param("etdrk4", "time integrator", choices=integrators.METHODS)
    ic_modes: int = param(5, "highest wavenumber (per axis) of the random initial condition",
                          range=(1, 4096))
    dtype: str = param("float32", "solver and storage precision",
                       choices=("float32", "float64"))

    def validate(self) -> None:
        if self.output_resolution and self.resolution % self.output_resolution:
            raise ValueError(f"output_resolution={self.output_resolution} must divide "
                             f"resolution={self.resolution} (data are stored by subsampling)")
        if 2 * self.ic_modes >= self.resolution:
            raise ValueError(f"ic_modes={self.ic_modes} must be below resolution/2="
                             f"{self.resolution / 2:g}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @property
    def stored_resolution(self) -> int:
        return self.output_resolution or self.resolution


def smooth_random(p: SemilinearParams, n: int, generator: torch.Generator, ndim: int = 1,
                  *, mean: float = 0.0, amplitude: float = 1.0) -> Tensor:
    """Random truncated Fourier series, ``(n, resolution, ...)`` over ``ndim`` axes, in
    ``p.dtype``: :func:`sciops.random_fields.smooth_periodic` with ``p.ic_modes`` modes.

    Independent standard normal coefficients for every wavenumber ``|m_i| <= ic_modes``
    (mean mode excluded), each sample scaled to ``max |u - mean| = amplitude``. Drawn on the
    CPU in float64 from ``generator`` (the same seed gives the same field at any dtype).
    """
    u = random_fields.smooth_periodic(n, (p.resolution,) * ndim, p.ic_modes, generator,
                                      mean=mean, amplitude=amplitude)
    return u.to(p.torch_dtype)


class SemilinearPDE(PDE):
    """Base of the families ``u_t = L u + N(u) + f(x)`` (see the module docstring).

    Subclasses set ``name``, ``ndim``, ``fields`` (name -> (units, meaning)) and ``Params``
    (a :class:`SemilinearParams`), and write :meth:`linear`, :meth:`initial` and, where
    present, :meth:`nonlinear`, :meth:`forcing` and :meth:`exact`.
    """

    ndim: ClassVar[int]
    fields: ClassVar[dict[str, tuple[str, str]]]
    Params: ClassVar[type[SemilinearParams]] = SemilinearParams
    #: Parameter overrides for the short, smooth, well-resolved float64 run of
    #: ``sciops verify`` (about 10-50 default steps; <= 128 points in 1D, 64² in 2D, 24³ in 3D).
    verify_case: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "fields") and hasattr(cls, "ndim"):
            dims = ("sample", "time", *AXES[:cls.ndim])
            cls.variables = {k: Variable(dims, units, meaning)
                             for k, (units, meaning) in cls.fields.items()}

    # --- the definition ------------------------------------------------------------------
    def linear(self, u: Fields, d: Derivatives, p: SemilinearParams) -> Fields:
        """The linear part ``L u`` (a field missing from the result contributes 0)."""
        raise NotImplementedError

    def nonlinear(self, u: Fields, d: Derivatives, p: SemilinearParams) -> Fields | None:
        """The nonlinear part ``N(u)``; None (the default) for a linear PDE."""
        return None

    def forcing(self, x: Fields, p: SemilinearParams) -> Fields | None:
        """Time-independent forcing ``f`` on coordinates ``x`` (broadcastable tensors by axis
        name); None (the default) for none."""
        return None

    def initial(self, p: SemilinearParams, n: int, generator: torch.Generator) -> Fields:
        """``n`` random initial fields, each ``(n, resolution, ...)``."""
        raise NotImplementedError

    # --- derived: box and metadata -------------------------------------------------------
    @property
    def axes(self) -> tuple[str, ...]:
        return AXES[:self.ndim]

    def lengths(self, p: SemilinearParams) -> tuple[float, ...]:
        return (p.length,) * self.ndim

    def grid_coords(self, params: SemilinearParams, shape: tuple[int, ...], dtype: torch.dtype,
                    device: torch.device | str) -> dict[str, Tensor]:
        """Grid coordinates of the box by axis name, each broadcastable along its own axis
        (``x``: ``(n, 1, ...)``, ``y``: ``(1, n, ...)``; length units), for ``forcing``."""
        x = spectral.grid(shape, self.lengths(params), dtype, device)
        return {a: x[i].reshape([-1 if j == i else 1 for j in range(self.ndim)])
                for i, a in enumerate(self.axes)}

    def sample_inputs(self, params: SemilinearParams, n: int, generator: torch.Generator
                      ) -> dict[str, Tensor]:
        """Initial fields ``<field>0``, each ``(n, resolution, ...)``."""
        return {f"{k}0": v for k, v in self.initial(params, n, generator).items()}

    def coords(self, params: SemilinearParams) -> dict[str, tuple[str, np.ndarray]]:
        m = params.stored_resolution
        x = np.arange(m) * (params.length / m)
        t = np.linspace(0.0, params.t_final, params.n_records + 1)
        return {"t": ("time", t), **{a: (a, x.copy()) for a in self.axes}}

    def domain(self, params: SemilinearParams) -> Domain:
        """``[0, t_final] x`` the periodic box; each field equals ``<field>0`` at t=0."""
        box = {"t": (0.0, params.t_final), **{a: (0.0, params.length) for a in self.axes}}
        conds = tuple(dirichlet(f"{k}(t=0)", "t", 0.0, k, f"{k}0") for k in self.fields)
        return Domain(box, tuple(self.fields), self.axes, conds)

    def point_sample(self, params: SemilinearParams, inputs: Mapping[str, Tensor]
                     ) -> PointSample:
        """Sample 0's initial fields as trigonometric interpolants of the grid. No exact
        solution: :meth:`exact` is one particular solution, not that of a random sample."""
        grids = {f"{k}0": inputs[f"{k}0"][0] for k in self.fields}
        L = self.lengths(params)

        def given(c: Mapping[str, Tensor]) -> dict[str, Tensor]:
            pts = [c[a] for a in self.axes]
            return {k: spectral.interpolate(v, L, pts) for k, v in grids.items()}

        return PointSample(given)

    def exact(self, params: SemilinearParams, coords: Mapping[str, Tensor]) -> Fields:
        """Closed-form fields at ``coords`` (``t`` and the axes, broadcastable tensors)."""
        raise NotImplementedError(f"{self.name}: no closed-form solution")

    # --- derived: time stepping ----------------------------------------------------------
    def symbol(self, params: SemilinearParams, device: torch.device | str = "cpu") -> Tensor:
        """The diagonal Fourier symbol of ``L``: ``(fields, n_1, ..., n_d//2+1)`` (1/time),
        complex128, or float64 when real. Raises if ``L`` couples fields."""
        shape = (params.resolution,) * self.ndim
        d = Symbols(shape, self.lengths(params), torch.float64, device)
        names = list(self.fields)
        ones = torch.ones(d.k2.shape, dtype=torch.complex128, device=device)
        rows = []
        for name in names:
            u = {k: ones if k == name else torch.zeros_like(ones) for k in names}
            out = self.linear(u, d, params)
            for other, val in out.items():
                if other != name and bool(torch.as_tensor(val).ne(0).any()):
                    raise ValueError(f"{self.name}: the linear part of {other!r} involves "
                                     f"{name!r}; L must be diagonal (move couplings into "
                                     "the nonlinear part)")
            rows.append(torch.as_tensor(out.get(name, 0.0), dtype=torch.complex128,
                                        device=device).expand_as(ones))
        sym = torch.stack(rows)
        return sym.real.clone() if bool((sym.imag == 0).all()) else sym

    def ode(self, params: SemilinearParams, device: torch.device | str = "cpu",
            perturb: float = 1.0) -> integrators.SemilinearODE:
        """The semi-discrete system on the solver grid: spectral states ``(batch, fields,
        n_1, ..., n_d//2+1)``. ``perturb`` multiplies ``N`` (``L`` for a linear PDE): the
        sensitivity check of ``sciops verify`` solves a deliberately wrong equation."""
        shape = (params.resolution,) * self.ndim
        L = self.lengths(params)
        dtype = params.torch_dtype
        mask = spectral.dealias_mask(shape, dtype, device)
        names = list(self.fields)

        def stack(out: Fields, batch: int) -> Tensor:
            """Fields by name -> ``(batch, fields, *shape)`` (absent fields: 0)."""
            return torch.stack([torch.as_tensor(out.get(k, 0.0), dtype=dtype, device=device)
                                .expand(batch, *shape) for k in names], dim=1)

        symbols = Symbols(shape, L, dtype, device)
        has_n = type(self).nonlinear is not SemilinearPDE.nonlinear
        read: list[int] = []
        if has_n:
            probe = {k: torch.zeros((1, *shape), dtype=dtype, device=device) for k in names}
            d = Spectral(shape, L, dtype, device, {id(t): (t, spectral.rfft(t, self.ndim))
                                                   for t in probe.values()}, symbols)
            used = _fields_read(lambda u: self.nonlinear(u, d, params), probe)
            read = [i for i, k in enumerate(names) if k in used]

        def nonlinear(u_hat: Tensor) -> Tensor:
            v_hat = u_hat * mask
            # grid values only of the fields N reads; the others enter through derivatives
            v = spectral.irfft(v_hat[:, read], shape) if read else None
            fields = {k: v[:, read.index(i)] if i in read else u_hat.new_empty(0)
                      for i, k in enumerate(names)}
            known = {id(f): (f, v_hat[:, i]) for i, f in enumerate(fields.values())}
            d = Spectral(shape, L, dtype, u_hat.device, known, symbols)
            out = stack(self.nonlinear(fields, d, params), u_hat.shape[0])
            n = spectral.rfft(out, self.ndim) * mask
            return n if perturb == 1.0 else perturb * n

        forcing = None
        f = self.forcing(self.grid_coords(params, shape, dtype, device), params)
        if f is not None:
            forcing = spectral.rfft(stack(f, 1), self.ndim)[0]
        symbol = self.symbol(params, device)
        if not has_n:
            symbol = perturb * symbol
        return integrators.SemilinearODE(symbol, nonlinear if has_n else None, forcing)

    def solve(self, params: SemilinearParams, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None,
              perturb: float = 1.0) -> dict[str, Tensor]:
        """Solve a batch. ``inputs["<field>0"]``: ``(batch, n, ...)`` at ``resolution``.

        Returns each field ``(batch, n_records + 1, m, ...)`` at ``m = output_resolution``,
        including t=0; raises :class:`SolverDiverged` naming blown-up samples. ``perturb``:
        see :meth:`ode`.
        """
        n = params.resolution
        grid = (n,) * self.ndim
        names = list(self.fields)
        u0 = []
        for k in names:
            v = inputs[f"{k}0"]
            if tuple(v.shape[1:]) != grid:
                raise ValueError(f"{k}0: expected shape (batch, {', '.join(map(str, grid))}), "
                                 f"got {tuple(v.shape)}")
            u0.append(v.to(params.torch_dtype))
        u_hat = spectral.rfft(torch.stack(u0, 1), self.ndim)
        ode = self.ode(params, u_hat.device, perturb)
        times = self.coords(params)["t"][1]
        stride = n // params.stored_resolution
        index = (slice(None), slice(None)) + (slice(None, None, stride),) * self.ndim
        frames = [spectral.irfft(s, grid)[index] for s in integrators.trajectory(
            ode, u_hat, times, method=params.method, dt=params.dt, burn_in=params.t_burn_in,
            name=self.name, callback=callback)]
        out = torch.stack(frames, 1)
        return {k: out[:, :, i] for i, k in enumerate(names)}

    # --- derived: residuals --------------------------------------------------------------
    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: SemilinearParams) -> Tensor:
        """``u_t - L u - N(u) - f`` for every field; two backends.

        Autograd (``coords`` t, x, ... require grad, see :mod:`sciops.autodiff`): fields are
        ``(N,)`` point values; returns ``(N, fields)``.

        Grid: fields ``(batch, time, m, ...)`` on the periodic grid, ``coords["t"]`` the
        ``time`` record times; spectral derivatives in space, 4th-order differences in time
        (2nd order below 5 records or on uneven times). Returns ``(batch, time, fields, m,
        ...)``. Units: the field's per time.
        """
        names = list(self.fields)
        if autodiff.wants_autograd(coords):
            d: Derivatives = Pointwise(coords, self.ndim)
            u_t = {k: autodiff.grad(fields[k], coords["t"]) for k in names}
            x = {a: coords[a] for a in self.axes}
            stack_dim = -1
        else:
            u = fields[names[0]]
            t = torch.as_tensor(np.asarray(coords["t"]), dtype=u.dtype, device=u.device)
            steps = t[1:] - t[:-1]
            uniform = len(t) >= 5 and bool(torch.allclose(steps, steps[0], rtol=1e-6))
            u_t = {k: time_derivative(fields[k], t, 1, 4 if uniform else 2) for k in names}
            shape = tuple(u.shape[-self.ndim:])
            d = Spectral(shape, self.lengths(params), u.dtype, u.device)
            x = self.grid_coords(params, shape, u.dtype, u.device)
            stack_dim = 2
        f = {k: fields[k] for k in names}
        lin = self.linear(f, d, params)
        non = self.nonlinear(f, d, params) or {}
        force = self.forcing(x, params) or {}
        return torch.stack([u_t[k] - lin.get(k, 0.0) - non.get(k, 0.0) - force.get(k, 0.0)
                            for k in names], dim=stack_dim)


def _fields_read(fn: Callable[[Fields], Any], fields: Fields) -> set[str]:
    """Names of the ``fields`` whose values ``fn(fields)`` passes to a torch operation or
    returns as they are (``{"v": u["u"]}``), as opposed to only handing them to a derivative
    provider (which finds their transforms by identity): the stepper skips the inverse
    transform of the others."""
    ids = {id(t): k for k, t in fields.items()}
    used: set[str] = set()

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            used.update(ids[id(a)] for a in tree_flatten((args, kwargs))[0] if id(a) in ids)
            return func(*args, **kwargs)

    with Watch():
        out = fn(fields)
    used.update(ids[id(a)] for a in tree_flatten(out)[0] if id(a) in ids)
    return used


def register_dims(stem: str, dims: Sequence[int] = (1, 2, 3),
                  verify_cases: Mapping[int, dict[str, Any]] | None = None
                  ) -> Callable[[type[SemilinearPDE]], type[SemilinearPDE]]:
    """Class decorator for a dimension-generic family (written with ``self.ndim``): registers
    one subclass per dimension, named ``<stem><d>d``, with an optional ``verify_case`` per
    dimension. Returns the generic class unchanged."""
    def decorate(cls: type[SemilinearPDE]) -> type[SemilinearPDE]:
        for d in dims:
            extra = {} if verify_cases is None else {"verify_case": dict(verify_cases[d])}
            register(type(f"{cls.__name__}{d}D", (cls,), {
                "name": f"{stem}{d}d", "ndim": d, "__doc__": cls.__doc__,
                "__module__": cls.__module__, **extra}))
        return cls
    return decorate
