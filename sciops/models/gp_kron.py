"""``gp-kron``: the Kronecker Gaussian-process PDE solver of GP-HM.

Fang, Cooley, Long, Li, Kirby, Zhe, "Solving High Frequency and Multi-Scale PDEs with
Gaussian Processes", ICLR 2024.

Model
-----
The solution values ``U`` on a uniform tensor-product collocation grid (boundaries
included) are latent Gaussian-process variables with a product kernel
``k(x, x') = Π_d k_d(x_d - x'_d)``, so ``cov(vec U) = K = K_1 ⊗ ... ⊗ K_D``. Each factor is a
spectral mixture ``k_d(r) = Σ_q w_q m_q(r) cos(ω_q r)``: a Student-t mixture in frequency
(Matérn-5/2 envelope ``m_q``, the paper's GP-HM-StM, ``kernel="matern"``) or a Gaussian
mixture (squared-exponential envelope, GP-HM-GM, ``kernel="gauss"``), with weights ``w_q``,
angular frequencies ``ω_q`` (rad per length unit) and envelope length scales ``ℓ_q``.
Derivatives come from the GP posterior mean given ``U``: along axis ``d``,
``∂ⁿU/∂x_dⁿ = U ×_d (K_d⁽ⁿ⁾ K_d⁻¹)`` with ``K_d⁽ⁿ⁾[i, j] = k_dⁿ(x_i - x_j)`` — kernel
derivatives, applied along one axis, never a full covariance.

The PDE ``R(u, d, f) = 0`` is any function written against a derivative provider ``d``
(:mod:`sciops.derivatives`; here :class:`KernelDerivatives`, the kernel derivative operators
above), e.g. a PDE definition's ``operator(u, d, p) - f`` — the solver keeps no equations of
its own. It holds at the interior nodes (every node off the faces that carry data) and
``u = g`` at the boundary nodes, both as Gaussian likelihoods, so the negative log joint is ::

    ℓ(U, θ) = ½ vec(U)ᵀ K⁻¹ vec(U) + ½ log|K| + ½ τ_b Σ_boundary (U - g)² + ½ τ_r Σ_interior R(U)²

(quadratic form and log-determinant by :mod:`sciops.kron`). The weights are estimated in
log space: a flat prior on ``log w`` is the Jeffreys prior ``p(w) ∝ 1/w``, the paper's
sparsity mechanism — unneeded frequencies are pruned, the rest move to the solution's.

Solver
------
We take the likelihoods' noise-free limit ``τ_b, τ_r → ∞``: for fixed kernel parameters θ
the MAP ``U(θ)`` satisfies the equations exactly (a square collocation system ``A(U) = y``,
``y = (g, f)``), found by Newton's method whose linear systems are solved by GMRES
preconditioned with the exact fast-diagonalization solve of the equation's principal part
(the linearization by autograd through a provider that records the derivatives the
residual reads) —
a Kronecker sum of per-axis interior matrices, ``O(Σ M_d³ + M Σ M_d)``; one iteration for
linear constant-coefficient PDEs (Poisson). θ minimizes, with Adam and optionally L-BFGS,

    J(θ) = ½ UᵀK⁻¹U + ½ log|K| + log|det A_II(θ)|   at U = U(θ),

the negative log marginal likelihood of the collocation data: ``U ~ N(0, K)`` and ``y = A U``
give ``y ~ N(0, A K Aᵀ)``, whose ``-log`` density is ``J`` up to a constant. ``A_II`` is the
interior block of the principal part's derivative terms (a Kronecker sum; its log-determinant
costs ``O(Σ M_d³ + M)``) — exact for Poisson; for other equations it leaves out zeroth-order
terms such as Allen–Cahn's ``u(u² - 1)``, which do not depend on θ. The paper's objective is
the log joint without this Jacobian term; we add it because without it ``J`` can be driven
down without bound by kernels whose derivative operator has a huge gain (shrinking ``U(θ)``),
which happens on multi-scale sources (``benchmarks/physics.py``: a 4-term ``poisson2d``
sample went to relative error 1.0 without it, 2e-4 with it). The exact gradient of ``J`` is
that of the Lagrangian ``J(U, θ) - λ·R(U; θ)`` at fixed ``U``, ``λ``, where the adjoint ``λ``
solves ``(∂R/∂U)ᵀ λ = K⁻¹U`` (the same preconditioned GMRES, transposed). Autograd runs
through the per-axis Cholesky factors and eigenvalues only. Everything is float64.

This replaces the paper's optimizer (Adam on ``U`` and θ jointly at finite τ, 10⁵-10⁶
steps): eliminating ``U`` exactly leaves a few dozen kernel parameters per axis, which
converge in a few hundred steps.

The solver is not an ``nn.Module`` (it has no forward pass to train on data), so it is not
in the model registry: build :class:`KroneckerGPSolver` directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sciops.derivatives import Derivatives
from sciops.kron import (
    KronSum,
    kron_apply,
    kron_cholesky_solve,
    kron_logdet,
    kron_quad,
    kron_sum_logabsdet,
    mode_apply,
)
from sciops.params import Params, param
from sciops.pdes.base import SolverDiverged

__all__ = ["KERNELS", "Residual", "KernelDerivatives", "GPKronOptions", "spectral_mixture",
           "KroneckerGPSolver"]

KERNELS = ("matern", "gauss")

# A Newton solve stops when max|R| falls below this times the scale of the data.
_NEWTON_RTOL = 1e-12
_NEWTON_MAXITER = 30
# ... and fails when it stalls above this (the system is too ill-conditioned to trust).
_NEWTON_ATOL = 1e-6
# fit() steps back to the best θ with half the step size at most this many times.
_MAX_BACKTRACKS = 8


@dataclass(frozen=True)
class GPKronOptions(Params):
    """Options of a gp-kron solve (``sciops solve --method gp-kron --option KEY=VALUE``)."""

    n_components: int = param(30, "spectral-mixture components Q per axis (GP-HM: 30)",
                              range=(1, 10_000))
    kernel: str = param("matern", "mixture envelope: 'matern' (Student-t spectrum, GP-HM-StM) "
                        "or 'gauss' (Gaussian spectrum, GP-HM-GM)", choices=KERNELS)
    steps: int = param(300, "Adam steps on the kernel parameters", range=(0, 10**9))
    lr: float = param(0.05, "Adam learning rate of the log weights and log length scales "
                      "(frequencies: lr times their initial spacing)", range=(0.0, 10.0),
                      open_low=True)
    lbfgs_steps: int = param(50, "L-BFGS iterations after Adam", range=(0, 10**9))
    points: int | None = param(None, "collocation points per axis, ends included (None: the "
                               "PDE's stored grid)", range=(4, 4097))


# ----------------------------------------------------------------------------- providers

Residual = Callable[[Tensor, Derivatives, Tensor], Tensor]
"""A PDE written once against a derivative provider: ``(u, d, f) -> r`` on grid fields."""
Key = tuple[tuple[int, int], ...]
"""A derivative of ``u`` as its per-axis orders, ``((axis, n), ...)`` sorted by axis."""


class KernelDerivatives(Derivatives):
    """The GP's derivative operators on the tensor grid, as a derivative provider
    (:mod:`sciops.derivatives`): ``partial(u, axis, n)`` is ``u ×_axis (K⁽ⁿ⁾ K⁻¹)`` of that
    axis' kernel, on grid fields ``(*batch, M_1, ..., M_D)`` (units of u per length^n).
    ``deriv[axis][n]`` holds the ``M_d × M_d`` matrices (orders 1 and 2); ``transpose``
    applies their transposes (the adjoint)."""

    def __init__(self, deriv: Sequence[Mapping[int, Tensor]], transpose: bool = False):
        self.ndim = len(deriv)
        self._deriv, self._transpose = deriv, transpose

    def partial(self, u: Tensor, axis: int, n: int = 1) -> Tensor:
        mat = self._deriv[axis].get(n)
        if mat is None:
            raise ValueError(f"gp-kron: no kernel derivative of order {n} along axis {axis} "
                             "(orders 1 and 2 per axis)")
        return mode_apply(mat.transpose(0, 1) if self._transpose else mat, u,
                          u.ndim - self.ndim + axis)


class _Recorder(Derivatives):
    """A provider that records which derivatives of ``u`` a residual reads: each distinct
    one is a leaf requiring grad (its value from ``values(key)``), kept in ``leaves`` by
    :data:`Key`, so autograd gives the residual's pointwise partials with respect to ``u``
    and to each derivative — the linearization, for any residual written against a provider.
    Derivatives of derivatives compose their orders (``d.x(d.y(u))`` is ``((0, 1), (1, 1))``);
    derivatives of other expressions of ``u`` are refused."""

    def __init__(self, u: Tensor, ndim: int, values: Callable[[Key], Tensor]):
        self.ndim, self._values = ndim, values
        self.leaves: dict[Key, Tensor] = {}
        self._keys: dict[int, Key] = {id(u): ()}
        self._u = u  # kept alive: identities stay unique

    def partial(self, u: Tensor, axis: int, n: int = 1) -> Tensor:
        base = self._keys.get(id(u))
        if base is None:
            raise ValueError("gp-kron: the equation differentiates an expression of the "
                             "unknown (e.g. d.x(u**2)); write it with derivatives of u only "
                             "(product rule)")
        orders = dict(base)
        orders[axis] = orders.get(axis, 0) + n
        if not 0 <= axis < self.ndim or orders[axis] > 2:
            raise ValueError(f"gp-kron: derivative of order {orders[axis]} along axis {axis}; "
                             f"allowed orders 1 and 2 along axes 0..{self.ndim - 1}")
        key = tuple(sorted(orders.items()))
        if key not in self.leaves:
            leaf = self._values(key).detach().requires_grad_()
            self.leaves[key] = leaf
            self._keys[id(leaf)] = key
        return self.leaves[key]


# ----------------------------------------------------------------------------- kernels


def spectral_mixture(r: Tensor, log_w: Tensor, omega: Tensor, log_ls: Tensor, order: int,
                     kernel: str = "matern") -> Tensor:
    """``dⁿk/drⁿ`` of ``k(r) = Σ_q w_q m_q(r) cos(ω_q r)`` at lags ``r``: shape of ``r``.

    ``log_w``, ``omega`` (rad/length), ``log_ls`` (log length): (Q,). ``order`` in 0..2.
    ``kernel="matern"``: ``m = (1 + a|r| + a²r²/3) e^{-a|r|}``, ``a = √5/ℓ`` (Matérn-5/2, the
    Fourier pair of a Student-t spectral mixture); ``"gauss"``: ``m = exp(-r²/(2ℓ²))``.
    """
    r = r.unsqueeze(-1)
    ls = torch.exp(log_ls)
    if kernel == "matern":
        a = math.sqrt(5.0) / ls
        s = r.abs()
        e = torch.exp(-a * s)
        env = ((1 + a * s + a * a * s * s / 3) * e,
               -(a * a / 3) * r * (1 + a * s) * e,
               -(a * a / 3) * (1 + a * s - a * a * s * s) * e)
    elif kernel == "gauss":
        g = torch.exp(-0.5 * (r / ls) ** 2)
        env = (g, -(r / ls**2) * g, ((r / ls**2) ** 2 - 1 / ls**2) * g)
    else:
        raise ValueError(f"kernel={kernel!r} is not allowed; choose one of {list(KERNELS)}")
    phase = omega * r
    carrier = (torch.cos(phase), -omega * torch.sin(phase), -omega**2 * torch.cos(phase))
    binom = ((1,), (1, 1), (1, 2, 1))[order]
    k = sum(c * env[j] * carrier[order - j] for j, c in enumerate(binom))
    return (k * torch.exp(log_w)).sum(-1)


def _toeplitz(values: Tensor, order: int) -> Tensor:
    """``T[i, j] = k⁽ⁿ⁾((i - j) h)`` from ``values[l] = k⁽ⁿ⁾(l h)``, l = 0..n-1 (uniform grid);
    odd orders are odd functions of the lag."""
    n = values.shape[-1]
    i = torch.arange(n, device=values.device)
    lag = i[:, None] - i[None, :]
    t = values[lag.abs()]
    return t * torch.sign(lag).to(t.dtype) if order % 2 else t


# ----------------------------------------------------------------------------- solver


@dataclass
class _Operators:
    """Per-axis Cholesky factors and derivative matrices for one θ."""

    chols: list[Tensor]
    deriv: list[dict[int, Tensor]]  # deriv[axis][order] = K⁽ⁿ⁾ K⁻¹ (M_d × M_d)

    def detach(self) -> _Operators:
        return _Operators([c.detach() for c in self.chols],
                          [{n: m.detach() for n, m in d.items()} for d in self.deriv])


@dataclass
class _Principal:
    """Principal part of a linearized equation: mean coefficients of the single-axis
    derivative terms ``{(axis, order): c}`` and of ``u`` (``shift``), the full-grid per-axis
    matrices ``A_d = Σ_n c D_d⁽ⁿ⁾`` and the factored interior Kronecker sum."""

    coeffs: dict[tuple[int, int], float]
    shift: float
    mats: list[Tensor]
    interior: KronSum


class KroneckerGPSolver:
    """GP-HM solver of a PDE on a box with Dirichlet data (see the module docstring).

    Parameters (validated here, defaults documented once):
        residual: the PDE ``(u, d, f) -> r`` (:data:`Residual`), written against a derivative
            provider ``d`` (here :class:`KernelDerivatives`); pointwise in ``u``, its
            derivatives and the source ``f`` (all grid fields of shape ``shape``). Linear or
            not: the solver linearizes it by autograd (see :class:`_Recorder`).
        domain: ``[(lo, hi)]`` per axis (length units).
        shape: collocation points per axis, boundaries included (>= 4).
        data_faces: per axis, whether its ``(lo, hi)`` faces carry Dirichlet data ``u = g``
            (default: every face); the equation is collocated at every other node, so an
            outflow face of a first-order equation carries the PDE, not data.
        n_components: mixture components Q per axis (30, as the paper).
        kernel: ``"matern"`` (Student-t mixture, default) or ``"gauss"``.
        jitter: diagonal added to each ``K_d``, relative to ``k_d(0)`` (1e-8).
        max_frequency: initial frequencies spread evenly on ``[0, max_frequency]`` rad/length
            per axis; None = the grid's Nyquist frequency ``π / h_d``.
        device: where the grid and parameters live ("cpu").

    Kernel parameters θ are a list with one dict per axis: ``log_w``, ``omega`` (rad/length)
    and ``log_ls`` (log length), each (Q,). After :meth:`fit`: ``params`` (the learned θ),
    ``solution`` (the grid values ``U``, shape ``shape``) and ``history`` (the profiled
    objective at every evaluation).
    """

    def __init__(self, residual: Residual, domain: Sequence[tuple[float, float]],
                 shape: Sequence[int], *, data_faces: Sequence[tuple[bool, bool]] | None = None,
                 n_components: int = 30, kernel: str = "matern", jitter: float = 1e-8,
                 max_frequency: float | None = None, device: torch.device | str = "cpu"):
        ndim = len(domain)
        faces = [(True, True)] * ndim if data_faces is None else [tuple(f) for f in data_faces]
        if not 1 <= ndim <= 3 or len(shape) != ndim or len(faces) != ndim:
            raise ValueError(f"domain, shape and data_faces: need 1 to 3 axes each, got "
                             f"{len(domain)}, {len(shape)} and {len(faces)}")
        if not any(lo or hi for lo, hi in faces):
            raise ValueError("data_faces: at least one face needs Dirichlet data")
        if any(not hi > lo for lo, hi in domain):
            raise ValueError(f"domain={list(domain)}: every axis needs lo < hi")
        if any(int(m) < 4 for m in shape):
            raise ValueError(f"shape={list(shape)} is out of range; allowed [4, inf) per axis")
        if n_components < 1:
            raise ValueError(f"n_components={n_components} is out of range; allowed [1, inf)")
        if kernel not in KERNELS:
            raise ValueError(f"kernel={kernel!r} is not allowed; choose one of {list(KERNELS)}")
        if not 0 < jitter < 1:
            raise ValueError(f"jitter={jitter} is out of range; allowed (0, 1)")
        if max_frequency is not None and not max_frequency > 0:
            raise ValueError(f"max_frequency={max_frequency} is out of range; allowed (0, inf)")
        self.residual = residual
        self.ndim = ndim
        self.domain = tuple((float(lo), float(hi)) for lo, hi in domain)
        self.shape = tuple(int(m) for m in shape)
        self.n_components = n_components
        self.kernel = kernel
        self.jitter = jitter
        self.max_frequency = max_frequency
        self.device = torch.device(device)
        self.grid = tuple(torch.linspace(lo, hi, m, dtype=torch.float64, device=self.device)
                          for (lo, hi), m in zip(self.domain, self.shape))
        # initial frequency spacing per axis: frequencies spread evenly on [0, ω_max]
        self._spacing = [(max_frequency or math.pi * (m - 1) / (hi - lo))
                         / max(n_components - 1, 1) for (lo, hi), m in zip(self.domain, self.shape)]
        # the nodes off the data faces carry the equation: a block of the tensor grid
        self._free = [slice(1 if lo else 0, -1 if hi else None) for lo, hi in faces]
        self._interior = (Ellipsis, *self._free)
        mask = torch.ones(self.shape, dtype=torch.bool, device=self.device)
        mask[self._interior] = False
        self._boundary = mask
        self._needed = sorted({o for key in self._probe() for o in key})
        self.params: list[dict[str, Tensor]] = []
        self.solution: Tensor | None = None
        self.history: list[float] = []
        self._alpha: Tensor | None = None

    def _probe(self) -> list[Key]:
        """The derivatives of ``u`` the residual reads (evaluated once on zeros)."""
        zero = torch.zeros(self.shape, dtype=torch.float64, device=self.device)
        rec = _Recorder(zero, self.ndim, lambda key: zero)
        r = self.residual(zero, rec, zero)
        if torch.broadcast_shapes(r.shape, self.shape) != self.shape:
            raise ValueError(f"residual: expected a grid field of shape {self.shape}, got "
                             f"{tuple(r.shape)}")
        return list(rec.leaves)

    # ---------------------------------------------------------------- parameters

    def init_params(self) -> list[dict[str, Tensor]]:
        """Initial θ per axis: weights ``1/Q``, frequencies evenly on ``[0, ω_max]`` (spacing
        ``Δω``), envelopes of spectral width about ``Δω`` (``ℓ = 2/Δω``), as in the paper."""
        q, opts = self.n_components, {"dtype": torch.float64, "device": self.device}
        return [{"log_w": torch.full((q,), -math.log(q), **opts),
                 "omega": torch.arange(q, **opts) * spacing,
                 "log_ls": torch.full((q,), math.log(2.0 / spacing), **opts)}
                for spacing in self._spacing]

    def _kernel_values(self, p: Mapping[str, Tensor], r: Tensor, order: int) -> Tensor:
        return spectral_mixture(r, p["log_w"], p["omega"], p["log_ls"], order, self.kernel)

    def _operators(self, params: Sequence[Mapping[str, Tensor]],
                   needed: Sequence[tuple[int, int]] | None = None) -> _Operators:
        """Cholesky factors of ``K_d + jitter k_d(0) I`` and the derivative matrices for the
        (axis, order) pairs ``needed`` (default: the equation's), each from kernel values at
        the ``M_d`` lags of the uniform grid."""
        needed = self._needed if needed is None else needed
        chols, deriv = [], []
        for ax, (p, x) in enumerate(zip(params, self.grid)):
            lags = x - x[0]
            k0 = self._kernel_values(p, lags, 0)
            eye = torch.eye(x.numel(), dtype=x.dtype, device=x.device)
            chol, info = torch.linalg.cholesky_ex(_toeplitz(k0, 0) + self.jitter * k0[0] * eye)
            if int(info) or not bool(torch.isfinite(chol).all()):
                raise SolverDiverged(f"gp-kron: kernel matrix of axis {ax} is not positive "
                                     "definite (kernel parameters out of range)")
            chols.append(chol)
            mats = {}
            for a, n in needed:
                if a == ax:
                    kn = _toeplitz(self._kernel_values(p, lags, n), n)
                    # D = K⁽ⁿ⁾ K⁻¹, from the solve K Dᵀ = K⁽ⁿ⁾ᵀ (K symmetric)
                    mats[n] = torch.cholesky_solve(kn.transpose(0, 1), chol).transpose(0, 1)
            deriv.append(mats)
        return _Operators(chols, deriv)

    # ---------------------------------------------------------------- residual and Newton

    @staticmethod
    def _derivative(ops: _Operators, u: Tensor, key: Key, transpose: bool = False) -> Tensor:
        """The derivative ``key`` of grid field ``u`` (or its adjoint)."""
        d = KernelDerivatives(ops.deriv, transpose)
        for ax, n in key:
            u = d.partial(u, ax, n)
        return u

    def _interior_residual(self, ops: _Operators, u: Tensor, f: Tensor) -> Tensor:
        return self.residual(u, KernelDerivatives(ops.deriv), f)

    def _linearize(self, ops: _Operators, u: Tensor, f: Tensor, g: Tensor
                   ) -> tuple[Tensor, Tensor, dict[Key, Tensor]]:
        """Residual of the square system (boundary rows ``u - g``, interior rows the PDE)
        and the pointwise partials of the PDE residual w.r.t. ``u`` and each derivative."""
        with torch.enable_grad():
            u_ = u.detach().requires_grad_()
            rec = _Recorder(u_, self.ndim, lambda key: self._derivative(ops, u, key))
            r = torch.broadcast_to(self.residual(u_, rec, f), self.shape)
            fields = rec.leaves
            # pointwise residual: the gradient of its sum is the diagonal of each partial
            grads = torch.autograd.grad(r.sum(), [u_, *fields.values()], allow_unused=True)
        zero = torch.zeros_like(u)
        partial_u = grads[0] if grads[0] is not None else zero
        partials = {k: (gr if gr is not None else zero) for k, gr in zip(fields, grads[1:])}
        full = torch.where(self._boundary, u - g, r.detach())
        return full, partial_u, partials

    def _jacobian(self, ops: _Operators, partial_u: Tensor, partials: Mapping[Key, Tensor],
                  transpose: bool) -> Callable[[Tensor], Tensor]:
        """``δ ↦ J δ`` (or ``Jᵀ δ``) of the square system."""
        mask = self._boundary

        def apply(v: Tensor) -> Tensor:
            if transpose:
                vi = torch.where(mask, 0.0, v)
                out = torch.where(mask, v, 0.0) + partial_u * vi
                for k, a in partials.items():
                    out = out + self._derivative(ops, a * vi, k, transpose=True)
                return out
            inner = partial_u * v
            for k, a in partials.items():
                inner = inner + a * self._derivative(ops, v, k)
            return torch.where(mask, v, inner)

        return apply

    def _principal(self, ops: _Operators, partial_u: Tensor,
                   partials: Mapping[Key, Tensor]) -> _Principal:
        """The equation's principal part ``P`` at the current linearization: data rows
        identity, equation rows ``Σ_d A_d + c I`` with ``A_d`` the single-axis derivative
        terms at their mean coefficient over the equation nodes (mixed derivatives dropped)."""
        inner = self._interior
        coeffs: dict[tuple[int, int], float] = {}
        for key, a in partials.items():
            if len(key) == 1:
                (ax, n), = key
                coeffs[ax, n] = coeffs.get((ax, n), 0.0) + float(a[inner].mean())
        shift = float(partial_u[inner].mean())
        mats = self._principal_mats(ops, coeffs)
        return _Principal(coeffs, shift, mats, KronSum.factor(self._blocks(mats), shift))

    def _blocks(self, mats: Sequence[Tensor]) -> list[Tensor]:
        """The equation-node blocks ``A_d[free, free]`` of full-grid per-axis matrices."""
        return [m[s, s] for m, s in zip(mats, self._free)]

    def _principal_mats(self, ops: _Operators, coeffs: Mapping[tuple[int, int], float]
                        ) -> list[Tensor]:
        mats = [torch.zeros_like(c) for c in ops.chols]
        for (ax, n), c in coeffs.items():
            mats[ax] = mats[ax] + c * ops.deriv[ax][n]
        return mats

    def _precondition(self, pc: _Principal, transpose: bool) -> Callable[[Tensor], Tensor]:
        """``r ↦ P⁻¹ r`` (or ``P⁻ᵀ r``). ``P`` is block-triangular in (boundary, interior)
        nodes and its equation block is the Kronecker sum of the ``A_d[free, free]``."""
        d, inner, mask = self.ndim, self._interior, self._boundary

        def principal(v: Tensor) -> Tensor:
            out = pc.shift * v
            for ax, m in enumerate(pc.mats):
                out = out + mode_apply(m.transpose(0, 1) if transpose else m, v, v.ndim - d + ax)
            return out

        def solve(r: Tensor) -> Tensor:
            x = torch.where(mask, r, 0.0)
            x[inner] = pc.interior.solve((r - principal(x))[inner])
            return x

        def solve_t(r: Tensor) -> Tensor:
            x = torch.zeros_like(r)
            x[inner] = pc.interior.solve(r[inner], transpose=True)
            return torch.where(mask, r - principal(x), x)

        return solve_t if transpose else solve

    def _newton(self, ops: _Operators, u: Tensor, f: Tensor, g: Tensor, scale: float
                ) -> tuple[Tensor, _Principal]:
        """MAP ``U(θ)`` in the noise-free limit: the root of the square system near ``u``,
        and the principal part used as preconditioner (built at the first iterate).

        Stops at ``max|R| <= 1e-12 scale`` or when an iteration no longer halves ``max|R|``
        (round-off floor of the ill-conditioned collocation system), keeping the best iterate.
        """
        best, best_u, prev, pc = math.inf, u, math.inf, None
        for _ in range(_NEWTON_MAXITER):
            r, pu, parts = self._linearize(ops, u, f, g)
            size = float(r.abs().max())
            if not math.isfinite(size):
                raise SolverDiverged("gp-kron: non-finite collocation residual")
            if size < best:
                best, best_u = size, u
            if pc is None:
                pc = self._principal(ops, pu, parts)
            if size <= _NEWTON_RTOL * scale or size > 0.5 * prev:
                break
            prev = size
            u = u + _gmres(self._jacobian(ops, pu, parts, transpose=False), -r,
                           self._precondition(pc, transpose=False))
        if best > _NEWTON_ATOL * scale:
            raise SolverDiverged(f"gp-kron: Newton stalled at max residual {best:.3e} "
                               f"(data scale {scale:.3e}); try more collocation points or a "
                               "different kernel")
        return best_u, pc

    # ---------------------------------------------------------------- objective

    def objective(self, params: Sequence[Mapping[str, Tensor]], f: Tensor, g: Tensor,
                  u0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The objective ``J(θ)`` of the module docstring and the MAP solution ``U(θ)``.

        ``f``, ``g``: source and Dirichlet data on the grid (:meth:`grid_values`); ``u0``: the
        Newton start (zeros if None). ``J`` is a scalar tensor whose ``backward()`` gives the
        exact ``dJ/dθ``: it is built as the Lagrangian ``J(U, θ) - λ·R(U; θ)`` at fixed ``U``
        and adjoint ``λ``, whose value is ``J`` since ``R(U(θ); θ) = 0``.
        """
        scale = max(float(f.abs().max()), float(g.abs().max()), 1e-300)
        u0 = torch.zeros(self.shape, dtype=torch.float64, device=self.device) if u0 is None else u0
        ops = self._operators(params)
        with torch.no_grad():
            fixed = ops.detach()
            u, pc = self._newton(fixed, u0, f, g, scale)
            _, pu, parts = self._linearize(fixed, u, f, g)
            lam = _gmres(self._jacobian(fixed, pu, parts, transpose=True),
                         kron_cholesky_solve(fixed.chols, u),
                         self._precondition(pc, transpose=True))
        mats = self._principal_mats(ops, pc.coeffs)
        value = 0.5 * kron_quad(ops.chols, u) + 0.5 * kron_logdet(ops.chols) \
            + kron_sum_logabsdet(self._blocks(mats))
        constraint = (lam * self._interior_residual(ops, u, f))[self._interior].sum()
        return value - constraint + constraint.detach(), u

    # ---------------------------------------------------------------- public API

    def grid_values(self, values: Tensor | float | Callable[..., Tensor]) -> Tensor:
        """``values`` on the collocation grid: a callable of the mesh coordinates
        (``f(x, y)`` on ``meshgrid(..., indexing="ij")``), a tensor of the grid's shape, or a
        constant."""
        if callable(values):
            out = values(*torch.meshgrid(*self.grid, indexing="ij"))
        else:
            out = torch.as_tensor(values, dtype=torch.float64, device=self.device)
        out = torch.broadcast_to(out.to(torch.float64), self.shape) if out.ndim == 0 else out
        if tuple(out.shape) != self.shape:
            raise ValueError(f"grid values: expected shape {self.shape}, got {tuple(out.shape)}")
        return out.to(dtype=torch.float64, device=self.device)

    def fit(self, source: Tensor | Callable[..., Tensor],
            boundary: Tensor | float | Callable[..., Tensor] = 0.0, *, steps: int = 300,
            lr: float = 0.05, lbfgs_steps: int = 0,
            callback: Callable[[int, float], None] | None = None) -> KroneckerGPSolver:
        """Learn the kernel and the solution for source ``f`` and Dirichlet data ``g``.

        ``source``, ``boundary``: see :meth:`grid_values` (only boundary nodes of ``g`` are
        used). ``steps`` Adam steps on θ from :meth:`init_params` (learning rate ``lr`` for the
        log weights and log length scales, ``lr Δω`` for the frequencies), then ``lbfgs_steps``
        L-BFGS iterations. An Adam step into a region where the solve fails
        (:class:`~sciops.pdes.base.SolverDiverged`: Newton stalls, a kernel matrix is not
        positive definite) returns to the best θ so far and halves the step size (at most 8
        times; L-BFGS stops instead).
        Keeps the θ with the lowest objective seen. ``callback(step, objective)`` is called
        after every evaluation.
        """
        if steps < 0 or lbfgs_steps < 0:
            raise ValueError(f"steps={steps}, lbfgs_steps={lbfgs_steps}: must be >= 0")
        if not lr > 0:
            raise ValueError(f"lr={lr} is out of range; allowed (0, inf)")
        f, g = self.grid_values(source), self.grid_values(boundary)
        params = self.init_params()
        for p in params:
            for t in p.values():
                t.requires_grad_()
        state = {"u": None, "best": math.inf, "best_params": None, "best_u": None}
        self.history = []

        def closure() -> Tensor:
            lagrangian, u = self.objective(params, f, g, state["u"])
            value = float(lagrangian.detach())
            state["u"] = u
            if value < state["best"]:
                state.update(best=value, best_u=u,
                             best_params=[{k: t.detach().clone() for k, t in p.items()}
                                          for p in params])
            self.history.append(value)
            if callback is not None:
                callback(len(self.history), value)
            optimizer.zero_grad()
            lagrangian.backward()
            return lagrangian

        # frequencies move in units of their initial spacing, log-parameters by lr
        groups = [{"params": [p["log_w"], p["log_ls"]], "lr": lr} for p in params]
        groups += [{"params": [p["omega"]], "lr": lr * dw} for p, dw in zip(params, self._spacing)]
        optimizer: torch.optim.Optimizer = torch.optim.Adam(groups)
        backtracks = 0

        def restore_best() -> None:
            with torch.no_grad():
                for p, best in zip(params, state["best_params"]):
                    for k, t in p.items():
                        t.copy_(best[k])
            state["u"] = state["best_u"]

        for _ in range(steps):
            try:
                optimizer.step(closure)
            except SolverDiverged:
                backtracks += 1
                if state["best_params"] is None or backtracks > _MAX_BACKTRACKS:
                    raise
                restore_best()
                optimizer.state.clear()
                for group in optimizer.param_groups:
                    group["lr"] *= 0.5
        try:
            if lbfgs_steps:
                leaves = [t for p in params for t in p.values()]
                optimizer = torch.optim.LBFGS(leaves, lr=1.0, max_iter=lbfgs_steps,
                                              history_size=20, line_search_fn="strong_wolfe",
                                              tolerance_grad=1e-12, tolerance_change=1e-14)
                optimizer.step(closure)
            closure()  # the last update has not been evaluated yet
        except SolverDiverged:
            if state["best_params"] is None:
                raise
        self.params = state["best_params"]
        self.solution = state["best_u"]
        with torch.no_grad():
            self._alpha = kron_cholesky_solve(self._operators(self.params).chols, self.solution)
        return self

    @torch.no_grad()
    def derivatives(self) -> KernelDerivatives:
        """The derivative provider of the fitted kernel (orders 1 and 2 on every axis):
        e.g. ``solver.derivatives().laplacian(solver.solution)`` at the collocation nodes."""
        self._check_fitted()
        needed = [(ax, n) for ax in range(self.ndim) for n in (1, 2)]
        return KernelDerivatives(self._operators(self.params, needed).deriv)

    def _cross(self, ax: int, points: Tensor) -> Tensor:
        """``k_d(p - x_j)`` for points ``p`` (P,) on axis ``ax``: (P, M_d)."""
        return self._kernel_values(self.params[ax], points[:, None] - self.grid[ax][None, :], 0)

    def _check_fitted(self) -> Tensor:
        if self._alpha is None:
            raise RuntimeError("gp-kron: call fit() before predicting")
        return self._alpha

    @torch.no_grad()
    def predict(self, points: Tensor) -> Tensor:
        """Posterior mean at scattered ``points`` (P, D) (length units): (P,).

        ``u(p) = Σ_j Π_d k_d(p_d - x_{d,j_d}) α_j`` with ``α = K⁻¹ vec(U)``: one (P, M_d)
        cross-covariance per axis, contracted with ``α`` in ``O(P M)``.
        """
        alpha = self._check_fitted()
        d = self.ndim
        points = torch.as_tensor(points, dtype=torch.float64, device=self.device)
        if points.ndim != 2 or points.shape[1] != d:
            raise ValueError(f"points: expected shape (P, {d}), got {tuple(points.shape)}")
        letters = "abc"[:d]
        spec = ",".join(f"p{c}" for c in letters) + f",{letters}->p"
        return torch.einsum(spec, *(self._cross(i, points[:, i]) for i in range(d)), alpha)

    @torch.no_grad()
    def predict_grid(self, coords: Sequence[Tensor]) -> Tensor:
        """Posterior mean on the tensor grid of 1-D ``coords`` (one per axis):
        (n_1, ..., n_D) = ``(K*_1 ⊗ ... ⊗ K*_D) α``, ``K*_d`` the (n_d, M_d) cross-covariances."""
        alpha = self._check_fitted()
        if len(coords) != self.ndim:
            raise ValueError(f"coords: need {self.ndim} axes, got {len(coords)}")
        cross = [self._cross(i, torch.as_tensor(c, dtype=torch.float64, device=self.device))
                 for i, c in enumerate(coords)]
        return kron_apply(cross, alpha)


# ----------------------------------------------------------------------------- GMRES


def _gmres(apply: Callable[[Tensor], Tensor], rhs: Tensor, precond: Callable[[Tensor], Tensor],
           rtol: float = 1e-13, restart: int = 60, max_restarts: int = 20) -> Tensor:
    """Right-preconditioned restarted GMRES for ``apply(x) = rhs`` (grid-shaped tensors).

    With an exact preconditioner it converges in one iteration.
    """
    x = torch.zeros_like(rhs)
    target = rtol * float(rhs.norm())
    for _ in range(max_restarts):
        r = rhs - apply(x)
        beta = float(r.norm())
        if not math.isfinite(beta):
            raise SolverDiverged("gp-kron: non-finite residual in GMRES")
        if beta <= target:
            break
        basis = [r / beta]
        h = torch.zeros(restart + 1, restart, dtype=rhs.dtype, device=rhs.device)
        e1 = torch.zeros(restart + 1, dtype=rhs.dtype, device=rhs.device)
        e1[0] = beta
        for j in range(restart):
            w = apply(precond(basis[j]))
            for i, v in enumerate(basis):  # modified Gram-Schmidt
                h[i, j] = (w * v).sum()
                w = w - h[i, j] * v
            h[j + 1, j] = w.norm()
            if not bool(torch.isfinite(h[: j + 2, j]).all()):
                raise SolverDiverged("gp-kron: non-finite Krylov vector in GMRES")
            y = torch.linalg.lstsq(h[: j + 2, : j + 1], e1[: j + 2, None]).solution[:, 0]
            res = float((h[: j + 2, : j + 1] @ y - e1[: j + 2]).norm())
            if res <= target or float(h[j + 1, j]) <= 1e-300:
                break
            basis.append(w / h[j + 1, j])
        x = x + precond(sum(c * v for c, v in zip(y, basis)))
    return x
