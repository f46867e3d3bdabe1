"""2D Poisson ``-Laplacian(u) = f`` on ``[0,1]²`` with ``u = 0`` on the boundary.

Solved exactly in the sine basis: the interior values of ``f`` are transformed with a
type-I discrete sine transform (``scipy.fft.dstn``), divided by the eigenvalues
``pi² (k² + l²)`` of the continuous operator and transformed back. For a source that is a
sine series with modes ``k, l <= n - 2`` this is the exact solution at the grid points (to
round-off), whatever the frequency. Two source families:

* ``source="cno"`` — the Poisson benchmark of the convolutional neural operator paper
  (Raonic et al. 2023, app. "Poisson equation"):
  ``f = (pi/K²) sum_{k,l=1..K} a_kl (k² + l²)^(-decay) sin(pi k x) sin(pi l y)``,
  ``a_kl ~ U(-1, 1)``, K=16, decay=0.5 (their ``r = -0.5``), so
  ``u = 1/(pi K²) sum a_kl (k² + l²)^(-decay-1) sin sin``.
* ``source="multiscale"`` — manufactured multi-scale / high-frequency solutions
  ``u = sum_{m=1..n_terms} c_m sin(pi k_m x) sin(pi l_m y)``, ``c_m ~ U(-1, 1)``, with
  ``k_m, l_m`` log-uniform integers in ``1..k_max`` (k_max=50), so a sample mixes scales.
  This is the regime of the Gaussian-process PDE solvers' tests (e.g. Fang et al. 2024,
  "Solving high frequency and multi-scale PDEs with Gaussian processes":
  ``sin(100x) sin(100y)`` has ``k ~ 32``), written with whole sine modes so the zero
  Dirichlet condition holds exactly.

Grid: ``x_j = j / (n - 1)``, ``j = 0..n-1`` (the CNO data grid), arrays indexed ``[x, y]``.
The sine-series helpers live in :mod:`sciops.spectral`, the random sources in
:mod:`sciops.random_fields`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.fft
import torch
from torch import Tensor

from sciops import autodiff, random_fields
from sciops.derivatives import Derivatives, Pointwise, Spectral
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
from sciops.spectral import (
    mode_numbers_squared,
    odd_extension,
    sine_basis,
    sine_series_at,
    synthesize,
)


@dataclass(frozen=True)
class Poisson2DParams(Params):
    resolution: int = param(64, "grid points per axis, boundaries included", range=(5, 8193))
    source: str = param("cno", "'cno' (random sine series source) or 'multiscale' "
                        "(manufactured multi-scale solution)", choices=("cno", "multiscale"))
    modes: int = param(16, "cno: modes K per axis", range=(1, 4096))
    decay: float = param(0.5, "cno: source coefficients scale as (k² + l²)^(-decay); -2..20 "
                         "(outside, the coefficients over/underflow for large modes)",
                         range=(-2.0, 20.0))
    n_terms: int = param(4, "multiscale: sine terms per solution", range=(1, 10_000))
    k_max: int = param(50, "multiscale: largest mode number per axis", range=(1, 4096))
    dtype: str = param("float32", "storage precision (the solve is float64)",
                       choices=("float32", "float64"))

    def validate(self) -> None:
        top = self.max_mode
        if self.resolution < top + 2:
            field = "modes" if self.source == "cno" else "k_max"
            raise ValueError(f"resolution={self.resolution} is too small for "
                             f"{field}={top}: need resolution >= {top + 2}")

    @property
    def max_mode(self) -> int:
        """Largest sine mode of the source family (a grid of n points resolves n - 2)."""
        return self.modes if self.source == "cno" else self.k_max


def solve_dst(f: np.ndarray) -> np.ndarray:
    """Exact sine-basis solution of ``-Laplacian(u) = f``, ``u = 0`` on the boundary.

    ``f``: (..., n, n) float64 node values on ``[0,1]²`` (boundary values unused).
    Returns ``u`` (..., n, n) with zero boundary; exact for sine series with modes <= n-2.
    """
    n = f.shape[-1]
    coef = scipy.fft.dstn(f[..., 1:-1, 1:-1], type=1, axes=(-2, -1))
    eig = math.pi**2 * mode_numbers_squared(n - 2).numpy()
    u = np.zeros_like(f)
    u[..., 1:-1, 1:-1] = scipy.fft.idstn(coef / eig, type=1, axes=(-2, -1))
    return u


@register
class Poisson2D(PDE):
    """Poisson -Laplacian(u) = f on the unit square, zero Dirichlet, exact sine solver."""

    name = "poisson2d"
    Params = Poisson2DParams
    variables = {
        "f": Variable(("sample", "x", "y"), "1", "source term"),
        "u": Variable(("sample", "x", "y"), "1", "solution, zero on the boundary"),
    }

    def sample_inputs(self, params: Poisson2DParams, n: int,
                      generator: torch.Generator) -> dict[str, Tensor]:
        """Source ``f`` (n, res, res) and its sine coefficients ``f_hat`` (n, M, M),
        ``M = modes`` (cno) or ``k_max`` (multiscale), ``f_hat[k-1, l-1]`` for mode (k, l)."""
        if params.source == "cno":
            f_hat = random_fields.sine_coefficients(n, params.modes, params.decay, generator)
        else:
            f_hat = self._multiscale_source(params, n, generator)
        f = synthesize(f_hat, sine_basis(params.resolution, f_hat.shape[-1]))
        return {"f": f, "f_hat": f_hat}

    @staticmethod
    def _multiscale_source(params: Poisson2DParams, n: int, generator: torch.Generator) -> Tensor:
        K, T = params.k_max, params.n_terms
        # floor(exp(U log(K+1))) is log-uniform on 1..K: every octave gets similar weight.
        kl = torch.floor(torch.exp(torch.rand((n, T, 2), generator=generator,
                                              dtype=torch.float64) * math.log(K + 1)))
        kl = kl.clamp(1, K).long()
        c = 2.0 * torch.rand((n, T), generator=generator, dtype=torch.float64) - 1.0
        u_hat = torch.zeros((n, K * K), dtype=torch.float64)
        u_hat.scatter_add_(1, (kl[..., 0] - 1) * K + (kl[..., 1] - 1), c)
        return math.pi**2 * mode_numbers_squared(K) * u_hat.reshape(n, K, K)

    def coords(self, params: Poisson2DParams) -> dict[str, tuple[str, np.ndarray]]:
        x = np.linspace(0.0, 1.0, params.resolution)
        return {"x": ("x", x), "y": ("y", x.copy())}

    def solve(self, params: Poisson2DParams, inputs: Mapping[str, Tensor], *,
              callback: Callable[[float], None] | None = None) -> dict[str, Tensor]:
        """Solve a batch with :func:`solve_dst` (scipy, CPU, float64).

        ``inputs["f"]``: (batch, n, n), ``n = params.resolution``. Returns ``f`` and ``u``
        (batch, n, n) in ``params.dtype`` on the device of ``f``.
        """
        f = inputs["f"]
        n = params.resolution
        if f.ndim != 3 or tuple(f.shape[1:]) != (n, n):
            raise ValueError(f"f: expected shape (batch, {n}, {n}), got {tuple(f.shape)}")
        u = torch.from_numpy(solve_dst(f.detach().cpu().double().numpy()))
        if callback is not None:
            callback(1.0)
        out_dtype = getattr(torch, params.dtype)
        return {"f": f.to(out_dtype), "u": u.to(device=f.device, dtype=out_dtype)}

    def exact(self, params: Poisson2DParams, f_hat: Tensor) -> Tensor:
        """Closed-form ``u`` for sine coefficients ``f_hat`` (..., M, M) of the source
        (as returned by :meth:`sample_inputs`): ``u_hat = f_hat / (pi² (k² + l²))``,
        summed on the grid. Returns (..., n, n) float64."""
        M = f_hat.shape[-1]
        u_hat = f_hat.double() / (math.pi**2 * mode_numbers_squared(M, f_hat.device))
        return synthesize(u_hat, sine_basis(params.resolution, M, f_hat.device))

    def domain(self, params: Poisson2DParams) -> Domain:
        """The unit square, unknown ``u``, ``u = 0`` on its four sides."""
        sides = tuple(dirichlet(f"{c}={v:g}", c, v, "u") for c in ("x", "y") for v in (0.0, 1.0))
        return Domain({"x": (0.0, 1.0), "y": (0.0, 1.0)}, ("u",), conditions=sides)

    def point_sample(self, params: Poisson2DParams, inputs: Mapping[str, Tensor]) -> PointSample:
        """Source ``f`` and exact ``u`` of sample 0 from its sine coefficients ``f_hat``."""
        f_hat = inputs["f_hat"][0].double()
        u_hat = f_hat / (math.pi**2 * mode_numbers_squared(f_hat.shape[-1], f_hat.device))
        return PointSample(
            given=lambda c: {"f": sine_series_at(f_hat, c["x"], c["y"])},
            exact=lambda c: {"u": sine_series_at(u_hat, c["x"], c["y"])})

    def operator(self, u: Tensor, d: Derivatives, params: Poisson2DParams) -> Tensor:
        """The left side of ``-Laplacian(u) = f``, written once against a derivative provider
        (the residual's two backends and ``--method gp-kron`` use it)."""
        return -d.laplacian(u)

    def residual(self, fields: Mapping[str, Tensor], coords: Mapping[str, Tensor],
                 params: Poisson2DParams) -> Tensor:
        """Residual ``operator(u) - f = -Laplacian(u) - f``; two backends.

        Autograd (``coords`` require grad, see :mod:`sciops.autodiff`): ``u``, ``f`` and the
        coordinates are (N,) point values; the Laplacian sums over the coordinates given
        (``x`` and ``y``; ``x`` alone is the 1-D equation ``-u'' = f``). Returns (N,).

        Spectral: ``fields["u"]``, ``fields["f"]``: (batch, n, n) on the vertex grid
        ``coords["x"]`` (uniform, boundaries included). The Laplacian is taken on the odd
        extension (:func:`odd_extension`), i.e. in the sine basis: exact (round-off) for sine
        series resolved by the grid. Returns (batch, n-2, n-2); differentiable.
        """
        u, f = fields["u"], fields["f"]
        if autodiff.wants_autograd(coords):
            xs = {c: coords[c] for c in ("x", "y") if c in coords}
            return self.operator(u, Pointwise(xs, len(xs)), params) - f
        n = u.shape[-1]
        x = torch.as_tensor(coords["x"], dtype=torch.float64)
        box = 2.0 * float(x[-1] - x[0])
        ext = odd_extension(u)
        d = Spectral(ext.shape[-2:], (box, box), ext.dtype, ext.device)
        return (self.operator(ext, d, params)[..., :n, :n] - f)[..., 1:-1, 1:-1]
