"""Error metrics of a prediction against a target field, over named dimensions.

Inputs are ``xarray.DataArray`` (any dim order; dask-backed arrays are read one chunk of
samples at a time), ``xarray.Dataset`` (its variables become a ``channel`` dimension), or
torch tensors / numpy arrays whose dims are named by ``dims`` (default
``("sample", "time", *spatial_dims)`` or ``("sample", *spatial_dims)``). Tensors are
processed on their own device; only the per-snapshot sums come back to the host.

The space dims (``spatial_dims``) default to those of ``x``, ``y``, ``z`` present among the
named dims, so 1-D, 2-D and 3-D fields need no argument; bare arrays without ``dims`` are
taken as 2-D (``x``, ``y`` last).

Notation, for one sample (and channel): ``e = pred - target``, ``y = target``; ``x`` runs
over the ``N`` grid points of one snapshot, ``t`` over the ``T`` time steps (``T = 1``
without a time dim). ``ê``, ``ŷ`` are unnormalized FFTs over space; by Parseval
``sum_x e² = (1/N) sum_m |ê_m|²`` over the full spectrum, with integer wavenumbers ``m``
(``m_i = k_i L_i / 2 pi``, so ``|m|`` is the number of periods per box, whatever the box
length). With the rfft layout, the halved axis is counted twice except its 0 and Nyquist
columns. Spatial sums are over the periodic grid as stored (uniform spacing assumed).

Metrics of a whole trajectory have dims ``(sample[, channel])``; ``rollout_error`` and
``correlation`` keep ``time``; the time-averaged energy spectra have a ``k`` dim.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from sciops import spectral

__all__ = [
    "BANDS",
    "METRICS",
    "band_rmse",
    "boundary_rmse",
    "correlation_time",
    "energy_spectrum",
    "evaluate_all",
    "h1_error",
    "max_error",
    "nrmse",
    "particle_errors",
    "relative_l2",
    "rmse",
    "rollout_error",
    "spectrum_error",
    "summarize",
]

#: Radial bands of integer wavenumber ``|m|``: name -> [low, high).
BANDS: dict[str, tuple[float, float]] = {
    "low": (0.0, 4.0),
    "mid": (4.0, 12.0),
    "high": (12.0, math.inf),
}

#: Every variable :func:`evaluate_all` can return.
METRICS: tuple[str, ...] = (
    "relative_l2", "rmse", "nrmse", "max_error", "boundary_rmse",
    *(f"rmse_{b}" for b in BANDS), "h1_error", "spectrum_error",
    "rollout_error", "correlation", "correlation_time",
    "spectrum_pred", "spectrum_target",
)


Field = xr.DataArray | xr.Dataset | Tensor | np.ndarray


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _Named:
    """A field with named dims: an ``xarray.DataArray`` (maybe dask-backed) or a tensor,
    which stays on its device."""

    data: xr.DataArray | Tensor
    dims: tuple[str, ...]

    @property
    def sizes(self) -> dict[str, int]:
        return dict(zip(self.dims, self.data.shape))

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Stored coordinates of the dims (none for tensors)."""
        if isinstance(self.data, Tensor):
            return {}
        # DataArray.coords.get would invent an integer index for a dim without coords
        return {d: self.data[d].values for d in self.dims if d in self.data.coords}

    @property
    def device(self) -> torch.device:
        return self.data.device if isinstance(self.data, Tensor) else torch.device("cpu")

    @property
    def is_float32(self) -> bool:
        return self.data.dtype in (torch.float32, np.float32)

    def chunks(self, order: Sequence[str], size: int) -> Iterator[Tensor]:
        """Tensors of ``size`` entries along ``order[0]``, dims in ``order``; a dask array
        reads only the chunk it yields."""
        if isinstance(self.data, Tensor):
            t = self.data.permute([self.dims.index(d) for d in order])
            for start in range(0, t.shape[0], size):
                yield t[start:start + size]
            return
        a = self.data.transpose(*order)
        for start in range(0, a.sizes[order[0]], size):
            chunk = np.asarray(a.isel({order[0]: slice(start, start + size)}).data)
            yield torch.from_numpy(np.ascontiguousarray(chunk))


#: Candidate space dims, in axis order; the ones present are the default ``spatial_dims``.
_SPACE: tuple[str, ...] = ("x", "y", "z")


def _named(a: Field, dims: Sequence[str] | None, spatial_dims: Sequence[str] | None) -> _Named:
    """Name the dims of ``a``; Dataset variables become the ``channel`` dim."""
    if isinstance(a, xr.Dataset):
        a = a.to_dataarray(dim="channel")
    if isinstance(a, xr.DataArray):
        return _Named(a, tuple(map(str, a.dims)))
    if dims is None:
        spatial_dims = _SPACE[:2] if spatial_dims is None else spatial_dims
        extra = a.ndim - len(spatial_dims)
        if extra not in (1, 2):
            raise ValueError(f"dims: cannot infer names for an array of {a.ndim} dims with "
                             f"spatial_dims={tuple(spatial_dims)}; pass dims explicitly")
        dims = ("sample", "time")[:extra] + tuple(spatial_dims)
    if len(dims) != a.ndim:
        raise ValueError(f"dims: {len(dims)} names for an array of {a.ndim} dims")
    data = a.detach() if isinstance(a, Tensor) else xr.DataArray(a, dims=tuple(dims))
    return _Named(data, tuple(dims))


def _space(a: _Named, spatial_dims: Sequence[str] | None) -> tuple[str, ...]:
    """``spatial_dims`` if given, else the dims of ``_SPACE`` that ``a`` has."""
    if spatial_dims is not None:
        return tuple(spatial_dims)
    found = tuple(d for d in _SPACE if d in a.dims)
    if not found:
        raise ValueError(f"spatial_dims: none of {_SPACE} among the dims {a.dims}; "
                         "pass spatial_dims")
    return found


def _layout(a: _Named, spatial_dims: Sequence[str]) -> tuple[list[str], bool]:
    """Batch dims (sample first) and whether ``a`` has a time dim."""
    missing = [d for d in spatial_dims if d not in a.dims]
    if missing:
        raise ValueError(f"spatial_dims: {missing} not among the dims {a.dims}")
    if len(a.dims) == len(spatial_dims):
        raise ValueError("pred/target: need at least one batch dim (e.g. 'sample') besides space")
    batch = [d for d in a.dims if d not in spatial_dims and d != "time"]
    if "sample" in batch:
        batch.remove("sample")
        batch.insert(0, "sample")
    return batch, "time" in a.dims


def _box_lengths(a: _Named, spatial_dims: Sequence[str],
                 lengths: float | Sequence[float] | None) -> tuple[float, ...]:
    """Periodic box lengths: given, else ``n * dx`` from stored coords, else 1 per axis."""
    if lengths is not None:
        scalar = np.isscalar(lengths)
        out = (float(lengths),) * len(spatial_dims) if scalar else tuple(map(float, lengths))
        if len(out) != len(spatial_dims) or min(out) <= 0:
            raise ValueError(f"lengths: need {len(spatial_dims)} positive box lengths, "
                             f"got {lengths}")
        return out
    coords, sizes = a.coords, a.sizes
    return tuple(float(coords[d][1] - coords[d][0]) * sizes[d]
                 if d in coords and sizes[d] > 1 else 1.0 for d in spatial_dims)


# --------------------------------------------------------------------------- spectral set-up


@dataclass(frozen=True)
class _Spectral:
    """Weights over the rfft layout of one grid and box, applied to interleaved squares.

    ``weights`` has shape ``(2K, C)`` for the ``K`` rfft bins, each row repeated for the
    real and imaginary part, so ``square(view_as_real(û)).flatten(-2) @ weights`` gives
    ``sum_m w_c(m) |û_m|²`` for every column ``c`` in one matmul. Every column carries the
    rfft multiplicity (2, or 1 on the 0 and Nyquist columns) so the sums run over the full
    spectrum. Columns: ``TOTAL``; ``NO_MEAN`` (mean mode dropped); one per band of
    :data:`BANDS`; ``GRAD`` (``|k|²`` in rad²/length², Nyquist ``k`` zeroed as in
    :func:`sciops.spectral.gradient`); then one per shell ``round(|m|) = 0, 1, ...``.
    """

    weights: Tensor
    boundary: Tensor  # (n_boundary,): flat indices of grid points on the box faces


_TOTAL, _NO_MEAN, _BAND0 = 0, 1, 2
_GRAD = _BAND0 + len(BANDS)
_SHELL0 = _GRAD + 1


@lru_cache(maxsize=16)
def _spectral_setup(shape: tuple[int, ...], lengths: tuple[float, ...], dtype: torch.dtype,
                    device: torch.device) -> _Spectral:
    d = len(shape)
    m = torch.sqrt(spectral.wavenumber_magnitude(shape, (2 * math.pi,) * d)).reshape(-1)
    nlast = shape[-1]
    mult = torch.full((nlast // 2 + 1,), 2.0, dtype=torch.float64)
    mult[0] = 1.0
    if nlast % 2 == 0:
        mult[-1] = 1.0
    mult = mult.expand(*shape[:-1], nlast // 2 + 1).reshape(-1)
    no_mean = mult.clone()
    no_mean[0] = 0.0
    bands = [mult * ((m >= lo) & (m < hi)) for lo, hi in BANDS.values()]
    ks = spectral.wavenumbers(shape, lengths, zero_nyquist=True)
    grad = mult * sum(k * k for k in ks).reshape(-1)
    shell = torch.round(m).long()
    shells = torch.zeros(m.numel(), int(shell.max()) + 1, dtype=torch.float64)
    shells[torch.arange(m.numel()), shell] = mult
    w = torch.cat([torch.stack([mult, no_mean, *bands, grad], dim=1), shells], dim=1)
    interior = torch.zeros(shape, dtype=torch.bool)
    interior[(slice(1, -1),) * d] = True
    boundary = (~interior).reshape(-1).nonzero().squeeze(1)
    return _Spectral(w.repeat_interleave(2, dim=0).to(dtype=dtype, device=device),
                     boundary.to(device))


# --------------------------------------------------------------------------- per-chunk statistics


def _weighted_power(u: Tensor, sp: _Spectral) -> Tensor:
    """``sum_m w_c(m) |û_m|²`` for every weight column: ``(B, T, *S) -> (B, T, C)`` float64."""
    # squared in place: the spectrum is not needed afterwards, and this saves a full copy
    sq = torch.view_as_real(spectral.rfft(u, u.ndim - 2)).square_()
    return (sq.flatten(2) @ sp.weights).double()


def _chunk_stats(p: Tensor, y: Tensor, sp: _Spectral) -> dict[str, Tensor]:
    """Per-snapshot spatial sums for ``p, y`` of shape ``(B, T, *S)``: tensors ``(B, T[, .])``.

    ``se, sy``: sum_x e², y²; ``maxe``: max_x |e|; ``bse``: sum of e² on the box faces;
    ``band``: (1/N) sum_m∈band |ê|²; ``ge, gy``: sum_x |grad e|², |grad y|²;
    ``ep, ey``: shell energies ½ sum_shell |û|² / N²; ``corr``: Pearson correlation over x.
    All sums but the max and the boundary come from three FFTs through Parseval; ``ê`` is
    the FFT of ``e`` itself, so small errors do not cancel against large fields.
    """
    n = math.prod(p.shape[2:])
    e = p - y
    flat_e = e.flatten(2)
    lo, hi = torch.aminmax(flat_e, dim=-1)
    pw_p, pw_y, pw_e = (_weighted_power(u, sp) for u in (p, y, e))
    # sum_x (p - p̄)(y - ȳ) = ½ (|p'|² + |y'|² - |e'|²) over the mean-free parts
    cov = 0.5 * (pw_p[..., _NO_MEAN] + pw_y[..., _NO_MEAN] - pw_e[..., _NO_MEAN])
    return {
        "se": pw_e[..., _TOTAL] / n,
        "sy": pw_y[..., _TOTAL] / n,
        "maxe": torch.maximum(hi, -lo).double(),
        "bse": flat_e[..., sp.boundary].square().sum(-1, dtype=torch.float64),
        "band": pw_e[..., _BAND0:_GRAD] / n,
        "ge": pw_e[..., _GRAD] / n,
        "gy": pw_y[..., _GRAD] / n,
        "ep": pw_p[..., _SHELL0:] / (2 * n * n),
        "ey": pw_y[..., _SHELL0:] / (2 * n * n),
        "corr": cov / torch.sqrt(pw_p[..., _NO_MEAN] * pw_y[..., _NO_MEAN]),
    }


def _compute_dtype(*fields: _Named) -> torch.dtype:
    """float32 only when every input is float32 (halves time and memory), else float64."""
    return torch.float32 if all(f.is_float32 for f in fields) else torch.float64


def _snapshots(t: Tensor, n_batch: int, has_time: bool, dtype: torch.dtype) -> Tensor:
    """``(*batch[, T], *S)`` chunk -> ``(B, T, *S)`` (``T = 1`` without a time dim)."""
    space = t.shape[n_batch + int(has_time):]
    return t.to(dtype).reshape(-1, t.shape[n_batch] if has_time else 1, *space)


# --------------------------------------------------------------------------- public API


def evaluate_all(
    pred: Field,
    target: Field,
    *,
    spatial_dims: Sequence[str] | None = None,
    dims: Sequence[str] | None = None,
    lengths: float | Sequence[float] | None = None,
    metrics: Sequence[str] | None = None,
    threshold: float = 0.8,
    chunk_size: int = 50,
) -> xr.Dataset:
    """All metrics of ``pred`` against ``target`` as one ``xarray.Dataset``.

    ``pred``/``target``: same dims and sizes; ``spatial_dims``: names of the (periodic)
    space dims (default: those of ``x, y, z`` present); ``dims``: names for bare
    tensors/arrays; ``lengths``: box lengths for the H1 gradient (default from the stored
    coords, else 1 per axis: the unit box);
    ``metrics``: subset of :data:`METRICS` (default all); ``threshold``: correlation level
    for ``correlation_time``; ``chunk_size``: samples read and processed at a time.

    Per sample and channel (sums over all ``x`` and ``t``):

    * ``relative_l2 = sqrt(sum e² / sum y²)`` (the FNO trajectory convention);
    * ``rmse = sqrt(sum e² / (N T))``;
    * ``nrmse = mean_t sqrt(sum_x e² / sum_x y²)`` (PDEBench: per-step, then time mean);
    * ``max_error = max |e|``;
    * ``boundary_rmse = sqrt(mean of e² over grid points with an index 0 or n-1 on some axis)``;
    * ``rmse_low|mid|high = sqrt(sum_t sum_{m∈band} |ê|² / (N² T))`` for the bands of
      :data:`BANDS`, so ``rmse_low² + rmse_mid² + rmse_high² = rmse²`` (Parseval);
    * ``h1_error = sqrt(sum (e² + |grad e|²) / sum (y² + |grad y|²))``, relative, with the
      spectral gradient of :func:`sciops.spectral.gradient` (units from ``lengths``);
    * ``spectrum_target/pred (k)``: shell energy ``E(k) = ½ sum_{round|m|=k} |û|² / N²``
      averaged over time, so ``sum_k E(k) = ½ mean_x u²``;
    * ``spectrum_error = sum_k |E_pred - E_target| / sum_k E_target`` of those spectra;
    * ``rollout_error (time) = sqrt(sum_x e² / sum_x y²)`` per step;
    * ``correlation (time)``: Pearson correlation of pred and target over ``x`` per step;
    * ``correlation_time``: number of leading steps with ``correlation >= threshold``
      (``T`` if it never drops below).

    A zero target makes the relative metrics inf or nan.
    """
    want = set(METRICS if metrics is None else metrics)
    unknown = want - set(METRICS)
    if unknown:
        raise ValueError(f"metrics: unknown {sorted(unknown)}; allowed {list(METRICS)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: must be >= 1, got {chunk_size}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold: must be in (0, 1], got {threshold}")
    p = _named(pred, dims, spatial_dims)
    y = _named(target, dims, spatial_dims)
    spatial_dims = _space(y, spatial_dims)
    batch, has_time = _layout(y, spatial_dims)
    if p.sizes != y.sizes:
        raise ValueError(f"pred: sizes {p.sizes} differ from target sizes {y.sizes}")
    order = [*batch, *(["time"] if has_time else []), *spatial_dims]
    shape = tuple(y.sizes[d] for d in spatial_dims)
    dtype = _compute_dtype(p, y)
    sp = _spectral_setup(shape, _box_lengths(y, spatial_dims, lengths), dtype, y.device)
    parts: dict[str, list[Tensor]] = {}
    for pc, yc in zip(p.chunks(order, chunk_size), y.chunks(order, chunk_size)):
        lead = pc.shape[:len(batch)]
        pt, yt = (_snapshots(c, len(batch), has_time, dtype) for c in (pc, yc))
        for k, v in _chunk_stats(pt, yt, sp).items():
            parts.setdefault(k, []).append(v.reshape(*lead, *v.shape[1:]))
    s = {k: torch.cat(v, dim=0).cpu() for k, v in parts.items()}
    return _assemble(s, want, y, batch, has_time, threshold, len(sp.boundary), math.prod(shape))


def _assemble(s: dict[str, Tensor], want: set[str], y: _Named, batch: list[str],
              has_time: bool, threshold: float, n_boundary: int, n: int) -> xr.Dataset:
    """Reduce per-step sums ``(*batch, T[, .])`` to the metrics, as a Dataset."""
    steps = s["se"].shape[-1]
    se, sy = s["se"], s["sy"]
    band = torch.sqrt(s["band"].sum(-2) / (n * steps))
    ep, ey = s["ep"].mean(-2), s["ey"].mean(-2)
    time = ["time"] if has_time else []
    out: dict[str, tuple[list[str], Tensor]] = {
        "relative_l2": (batch, torch.sqrt(se.sum(-1) / sy.sum(-1))),
        "rmse": (batch, torch.sqrt(se.sum(-1) / (n * steps))),
        "nrmse": (batch, torch.sqrt(se / sy).mean(-1)),
        "max_error": (batch, s["maxe"].amax(-1)),
        "boundary_rmse": (batch, torch.sqrt(s["bse"].sum(-1) / (n_boundary * steps))),
        **{f"rmse_{name}": (batch, band[..., i]) for i, name in enumerate(BANDS)},
        "h1_error": (batch, torch.sqrt((se + s["ge"]).sum(-1) / (sy + s["gy"]).sum(-1))),
        "spectrum_error": (batch, (ep - ey).abs().sum(-1) / ey.sum(-1)),
        "rollout_error": (batch + time, torch.sqrt(se / sy) if has_time else None),
        "correlation": (batch + time, s["corr"] if has_time else None),
        # cumprod of the pass mask counts the leading run of steps above the threshold
        "correlation_time": (batch, (s["corr"] >= threshold).long().cumprod(-1).sum(-1)),
        "spectrum_pred": ([*batch, "k"], ep),
        "spectrum_target": ([*batch, "k"], ey),
    }
    coords = {d: c for d, c in y.coords.items() if d in [*batch, *time]}
    coords["k"] = np.arange(ep.shape[-1])
    return xr.Dataset({k: (dims, v.numpy()) for k, (dims, v) in out.items()
                       if k in want and v is not None}, coords=coords)


def _one(name: str, pred: Field, target: Field, **kw) -> xr.DataArray:
    return evaluate_all(pred, target, metrics=(name,), **kw)[name]


def relative_l2(pred: Field, target: Field, **kw) -> xr.DataArray:
    """``sqrt(sum e² / sum y²)`` over space and time, per sample (see :func:`evaluate_all`)."""
    return _one("relative_l2", pred, target, **kw)


def rmse(pred: Field, target: Field, **kw) -> xr.DataArray:
    """``sqrt(mean e²)`` over space and time, per sample (units of the field)."""
    return _one("rmse", pred, target, **kw)


def nrmse(pred: Field, target: Field, **kw) -> xr.DataArray:
    """Time mean of the per-step ``sqrt(sum_x e² / sum_x y²)``, per sample (PDEBench nRMSE)."""
    return _one("nrmse", pred, target, **kw)


def max_error(pred: Field, target: Field, **kw) -> xr.DataArray:
    """``max |e|`` over space and time, per sample (units of the field)."""
    return _one("max_error", pred, target, **kw)


def boundary_rmse(pred: Field, target: Field, **kw) -> xr.DataArray:
    """RMSE over the grid points on the box faces (index 0 or n-1 on some axis), per sample."""
    return _one("boundary_rmse", pred, target, **kw)


def band_rmse(pred: Field, target: Field, **kw) -> xr.DataArray:
    """RMSE restricted to the radial wavenumber bands of :data:`BANDS`, dim ``band`` added.

    The squares of the bands sum to ``rmse²`` (Parseval over the full spectrum).
    """
    ds = evaluate_all(pred, target, metrics=[f"rmse_{b}" for b in BANDS], **kw)
    out = xr.concat([ds[f"rmse_{b}"] for b in BANDS], dim="band").assign_coords(band=list(BANDS))
    return out.transpose(..., "band").rename("band_rmse")


def h1_error(pred: Field, target: Field, **kw) -> xr.DataArray:
    """Relative H1 error ``sqrt(sum (e² + |grad e|²) / sum (y² + |grad y|²))``, per sample."""
    return _one("h1_error", pred, target, **kw)


def spectrum_error(pred: Field, target: Field, **kw) -> xr.DataArray:
    """``sum_k |E_pred(k) - E_target(k)| / sum_k E_target(k)`` of time-averaged shell spectra."""
    return _one("spectrum_error", pred, target, **kw)


def rollout_error(pred: Field, target: Field, **kw) -> xr.DataArray:
    """Relative L2 error per time step, dims ``(sample[, channel], time)``."""
    return _one("rollout_error", pred, target, **kw)


def correlation_time(pred: Field, target: Field, threshold: float = 0.8, **kw) -> xr.DataArray:
    """Number of leading steps whose Pearson field correlation stays ``>= threshold``."""
    return _one("correlation_time", pred, target, threshold=threshold, **kw)


def energy_spectrum(
    field: Field,
    *,
    spatial_dims: Sequence[str] | None = None,
    dims: Sequence[str] | None = None,
    chunk_size: int = 50,
) -> xr.DataArray:
    """Isotropic shell-summed spectrum ``E(k) = ½ sum_{round|m| = k} |û_m|² / N²``.

    ``|m|`` is the integer radial wavenumber (periods per box), summed over the full
    spectrum, so ``sum_k E(k) = ½ mean_x u²`` (energy per unit volume for a velocity
    component; sum the spectra of the components for the kinetic energy). Returns dims
    ``(*batch[, time], k)`` with ``k = 0 .. round(max |m|)``.
    """
    u = _named(field, dims, spatial_dims)
    spatial_dims = _space(u, spatial_dims)
    batch, has_time = _layout(u, spatial_dims)
    time = ["time"] if has_time else []
    shape = tuple(u.sizes[d] for d in spatial_dims)
    dtype = _compute_dtype(u)
    sp = _spectral_setup(shape, (1.0,) * len(shape), dtype, u.device)
    n = math.prod(shape)
    parts = []
    for c in u.chunks([*batch, *time, *spatial_dims], chunk_size):
        t = _snapshots(c, len(batch), has_time, dtype)
        e = _weighted_power(t, sp)[..., _SHELL0:] / (2 * n * n)
        parts.append(e.reshape(*c.shape[:len(batch) + len(time)], -1))
    out = torch.cat(parts, dim=0).cpu().numpy()
    coords = {d: c for d, c in u.coords.items() if d in [*batch, *time]}
    coords["k"] = np.arange(out.shape[-1])
    return xr.DataArray(out, dims=[*batch, *time, "k"], coords=coords, name="energy_spectrum")


def nonfinite(metrics: xr.Dataset) -> xr.DataArray:
    """Per sample (every batch position, channels folded): True where any scalar metric is
    NaN or inf (a non-finite prediction, or a zero or non-finite target)."""
    bad = None
    for v in metrics.data_vars.values():
        if "time" in v.dims or "k" in v.dims:
            continue
        b = ~np.isfinite(v)
        b = b.any("channel") if "channel" in b.dims else b
        bad = b if bad is None else bad | b
    return bad if bad is not None else xr.DataArray(False)


def summarize(metrics: xr.Dataset) -> dict[str, float]:
    """One number per scalar metric: the mean over samples (and channels), the max for
    ``max_error``. Time-resolved and spectral variables are left out.

    A non-finite sample is never skipped: it makes the means (and ``max_error``) NaN or inf,
    and ``nonfinite_samples`` counts the samples with any non-finite scalar metric."""
    out: dict[str, float] = {}
    for name, v in metrics.data_vars.items():
        if "time" in v.dims or "k" in v.dims:
            continue
        out[str(name)] = float(v.max(skipna=False) if name == "max_error"
                               else v.mean(skipna=False))
    out["nonfinite_samples"] = int(nonfinite(metrics).sum())
    return out


def particle_errors(pred: Field, target: Field) -> xr.Dataset:
    """Position errors of particle rollouts; ``pred``, ``target``: ``(sample, time, particle,
    dim)`` positions in m (arrays, tensors or DataArrays in that dim order).

    With ``|e|`` the distance between predicted and true position of a particle at a step:

    * ``rollout_error (sample, time) = sqrt(mean_particles |e|²)`` (m);
    * ``position_rmse (sample) = sqrt(mean_{time, particles} |e|²)`` (m);
    * ``final_rmse (sample)``: ``rollout_error`` at the last step (m);
    * ``max_error (sample) = max |e|`` (m);
    * ``mse (sample) = mean_{time, particles} |e|²`` (m²; the particle task's test error).
    """
    p, y = (np.asarray(a, dtype=np.float64) for a in (pred, target))
    if p.shape != y.shape or p.ndim != 4:
        raise ValueError(f"pred: shape {p.shape} must equal target shape {y.shape}, "
                         f"(sample, time, particle, dim)")
    sq = ((p - y) ** 2).sum(-1)
    per_step = np.sqrt(sq.mean(-1))
    return xr.Dataset({"position_rmse": ("sample", np.sqrt(sq.mean((1, 2)))),
                       "final_rmse": ("sample", per_step[:, -1]),
                       "max_error": ("sample", np.sqrt(sq.max((1, 2)))),
                       "mse": ("sample", sq.mean((1, 2))),
                       "rollout_error": (("sample", "time"), per_step)})
