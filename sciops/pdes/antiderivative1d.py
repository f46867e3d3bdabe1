"""The antiderivative operator ``u' = f`` on ``[0, 1]``, ``u(0) = 0`` (DeepONet's first test).

Lu et al. 2021 ("Learning nonlinear operators via DeepONet", sec. 4.1; DeepXDE's
``antiderivative_aligned`` example): ``f`` is a draw of the Gaussian process with the RBF
kernel ``k(x, x') = variance * exp(-(x - x')² / (2 l²))``, ``l = 0.2``, observed at 100
equispaced sensors; the operator maps ``f`` to ``u(x) = int_0^x f``.

Why not :func:`sciops.random_fields.grf`: that field is periodic on its box with a zero mean
mode, so on ``[0, 1]`` every ``u`` would vanish at both ends. The RBF process is sampled
instead by *circulant embedding*: on a period ``P >= 1 + 9 l`` the stationary process is,
up to the wrap-around ``exp(-(P - 1)² / (2 l²)) < 3e-18``, the random Fourier series

    f(x) = sum_{m=0}^{M} sqrt(s_m) (xi_m cos k_m x + eta_m sin k_m x),   k_m = 2 pi m / P,

with ``s_0 = S(0) / P``, ``s_m = 2 S(k_m) / P`` and the RBF spectral density
``S(k) = variance sqrt(2 pi) l exp(-k² l² / 2)``; ``M`` stops where ``k l > 9``
(``S`` below ``3e-18`` of its peak). Because ``f`` is a finite trigonometric sum, its
antiderivative is exact in closed form,

    u(x) = a_0 x + sum_{m>=1} (a_m sin k_m x + b_m (1 - cos k_m x)) / k_m,

so stored ``f`` and ``u`` satisfy ``u' = f``, ``u(0) = 0`` to rounding, at any resolution.
Grid: ``x_j = j / (resolution - 1)``, both ends included (DeepXDE's sensors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sciops import autodiff
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

# Spectrum cut-off (k l) and embedding margin ((P - 1) / l): exp(-9² / 2) = 2.6e-18.
_CUTOFF = 9.0


@dataclass(frozen=True)
class Antiderivative1DParams(Params):
    resolution: int = param(100, "stored points x_j = j / (resolution - 1), both ends "
                            "included (DeepONet: 100 sensors)", range=(2, 1_000_000))
    length_scale: float = param(0.2, "RBF kernel length scale l (length units)",
                                range=(1e-3, None))
    variance: float = param(1.0, "RBF kernel variance (units of f squared)",
                            range=(0.0, None), open_low=True)
    period: float | None = param(None, "period P of the circulant embedding (length units); "
                                 "None = 1 + 9 l (exact RBF covariance on [0, 1]); a smaller "
                                 "P gives the P-periodized kernel", range=(1.0, None))
    dtype: str = param("float32", "storage precision (the solve is float64)",
                       choices=("float32", "float64"))

    @property
    def embedding_period(self) -> float:
        return self.period if self.period is not None else 1.0 + _CUTOFF * self.length_scale

    @property
    def n_modes(self) -> int:
        """Fourier modes ``m = 0 .. n_modes - 1`` kept: those with ``k_m l <= 9``."""
        return int(_CUTOFF * self.embedding_period / (2 * math.pi * self.length_scale)) + 1

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


def mode_variances(params: Antiderivative1DParams) -> Tensor:
    """Variances ``s_m`` of the cos and sin amplitudes, shape (n_modes,), float64."""
    P, l = params.embedding_period, params.length_scale
    k = 2 * math.pi * torch.arange(params.n_modes, dtype=torch.float64) / P
    density = params.variance * math.sqrt(2 * math.pi) * l * torch.exp(-0.5 * (k * l) ** 2)
    weight = torch.full_like(k, 2.0 / P)
    weight[0] = 1.0 / P
    return weight * density


def embedded_covariance(params: Antiderivative1DParams, r: Tensor) -> Tensor:
    """Covariance ``sum_m s_m cos(k_m r)`` of the sampled process at lag ``r`` (float64)."""
    k = 2 * math.pi * torch.arange(params.n_modes, dtype=torch.float64) / params.embedding_period
    r = torch.as_tensor(r, dtype=torch.float64)
    return torch.cos(r[..., None] * k) @ mode_variances(params)


def mode_series(params: Antiderivative1DParams, modes: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """``f`` and its antiderivative ``u`` (both (batch, P)) of the Fourier amplitudes
    ``modes`` (batch, 2, n_modes) at points ``x`` (P,), in the dtype of ``x``."""
    k = (2 * math.pi / params.embedding_period) * torch.arange(
        params.n_modes, dtype=x.dtype, device=x.device)
    cos, sin = torch.cos(x[:, None] * k), torch.sin(x[:, None] * k)
    a, b = modes[:, 0], modes[:, 1]
    f = a @ cos.T + b @ sin.T
    # int_0^x cos = sin(kx)/k and int_0^x sin = (1 - cos kx)/k; the k=0 mode gives x.
    k_safe = torch.where(k > 0, k, 1.0)
    int_cos = torch.where(k > 0, sin / k_safe, x[:, None])
    int_sin = torch.where(k > 0, (1.0 - cos) / k_safe, 0.0)
    return f, a @ int_cos.T + b @ int_sin.T


@register
class Antiderivative1D(PDE):
    """Antiderivative u' = f on [0,1], u(0)=0, f from an RBF Gaussian process (DeepONet)."""

    name = "antiderivative1d"
    Params = Antiderivative1DParams
    variables = {
        "f": Variable(("sample", "x"), "1", "input function f = du/dx"),
        "u": Variable(("sample", "x"), "length", "antiderivative u(x) = int_0^x f(s) ds"),
    }

    def sample_inputs(self, params: Antiderivative1DParams, n: int,
                      generator: torch.Generator) -> dict[str, Tensor]:
        """Fourier amplitudes ``f_modes`` (n, 2, n_modes): ``[:, 0]`` cos, ``[:, 1]`` sin."""
        xi = torch.randn((n, 2, params.n_modes), generator=generator, dtype=torch.float64)
        return {"f_modes": xi * mode_variances(params).sqrt()}

    def coords(self, params: Antiderivative1DParams) -> dict[str, tuple[str, np.ndarray]]:
        return {"x": ("x", np.linspace(0.0, 1.0, params.resolution))}

    def solve(self, params: Antiderivative1DParams, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None) -> dict[str, Tensor]:
        """``inputs["f_modes"]`` (batch, 2, n_modes) -> ``f``, ``u`` (batch, resolution).

        Any amplitudes are accepted, so a hand-made series (e.g. ``cos 2 pi k x`` with
        ``period=1``) can be integrated too.
        """
        modes = inputs["f_modes"]
        if modes.ndim != 3 or tuple(modes.shape[1:]) != (2, params.n_modes):
            raise ValueError(f"f_modes: expected shape (batch, 2, {params.n_modes}), "
                             f"got {tuple(modes.shape)}")
        x = torch.linspace(0.0, 1.0, params.resolution, dtype=torch.float64, device=modes.device)
        f, u = mode_series(params, modes.to(torch.float64), x)
        if callback is not None:
            callback(1.0)
        return {"f": f.to(params.torch_dtype), "u": u.to(params.torch_dtype)}

    def domain(self, params: Antiderivative1DParams) -> Domain:
        """``[0, 1]``, unknown ``u``, ``u(0) = 0``."""
        return Domain({"x": (0.0, 1.0)}, ("u",), conditions=(dirichlet("x=0", "x", 0.0, "u"),))

    def point_sample(self, params: Antiderivative1DParams,
                     inputs: Mapping[str, Tensor]) -> PointSample:
        """``f`` and its exact antiderivative ``u`` of sample 0 at points ``x`` (N,)."""
        modes = inputs["f_modes"][:1]
        return PointSample(lambda c: {"f": mode_series(params, modes.to(c["x"]), c["x"])[0][0]},
                           lambda c: {"u": mode_series(params, modes.to(c["x"]), c["x"])[1][0]})

    def exact(self, params: Antiderivative1DParams, k: int) -> dict[str, Tensor]:
        """``f = cos(2 pi k x)`` and ``u = sin(2 pi k x) / (2 pi k)`` on the stored grid
        (float64, shape (resolution,)); ``k >= 1``."""
        if k < 1:
            raise ValueError(f"k={k} must be >= 1")
        x = torch.linspace(0.0, 1.0, params.resolution, dtype=torch.float64)
        w = 2 * math.pi * k
        return {"f": torch.cos(w * x), "u": torch.sin(w * x) / w}

    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: Antiderivative1DParams) -> Tensor:
        """``du/dx - f``, same shape as ``u`` (units of f).

        Autograd backend when ``coords["x"]`` requires grad (PINN: ``u`` computed from
        ``x``, ``x`` of the same shape as ``u``, each ``u`` entry depending on its own
        ``x``); otherwise second-order finite differences along the last axis of the
        grid ``coords["x"]`` (1-D, any spacing).
        """
        u, f, x = fields["u"], fields["f"], coords["x"]
        if autodiff.wants_autograd(coords):
            u_x = autodiff.grad(u, x)
        else:
            x = torch.as_tensor(x, dtype=u.dtype, device=u.device)
            u_x = torch.gradient(u, spacing=(x,), dim=-1, edge_order=2)[0]
        return u_x - f
