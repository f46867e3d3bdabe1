"""Figures for reports (matplotlib, Agg). Functions that compare models take ``colors``
(label -> colour, from :func:`colors_for`) so a model keeps its colour in every figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    LogLocator,
    MaxNLocator,
    NullFormatter,
    ScalarFormatter,
)

#: Colours of the references, never given to a model.
REFERENCE_COLORS = {"truth": "black", "persistence": "0.55", "constant velocity": "0.55"}


def colors_for(labels: Sequence[str]) -> dict[str, str]:
    """One colour per model label (tab10 in order, cycling), plus :data:`REFERENCE_COLORS`."""
    cycle = plt.get_cmap("tab10").colors
    return {**{label: matplotlib.colors.to_hex(cycle[i % len(cycle)])
               for i, label in enumerate(labels)}, **REFERENCE_COLORS}


def _style(label: str, colors: dict[str, str] | None) -> dict:
    """Line colour of ``label``; references are dashed."""
    style = {"label": label, "color": (colors or {}).get(label)}
    if label in REFERENCE_COLORS and label != "truth":
        style["linestyle"] = "--"
    return style


def _tidy_log(axis: matplotlib.axis.Axis, values: np.ndarray) -> None:
    """Major ticks on a log ``axis`` that do not crowd: a few plain numbers within two
    decades, 1-2-5 steps over a few, only powers of ten over many; minor labels off."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    decades = np.log10(v.max() / v.min()) if v.size else 1.0
    if decades < 1.3:
        axis.set_major_locator(MaxNLocator(nbins=4))
        axis.set_major_formatter(ScalarFormatter(useOffset=False))
    else:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 2.5
                                          else (1.0,), numticks=8))
    axis.set_minor_formatter(NullFormatter())


def plot_snapshots(fields: np.ndarray, col_titles: Sequence[str], path: Path, *,
                   title: str = "", cmap: str = "RdBu_r") -> Path:
    """Grid of snapshots, e.g. one row per sample and one column per time: ``fields``
    ``(rows, cols, x, y)`` as images (symmetric colour range per row) or ``(rows, cols, x)``
    as line plots (one y-range per row, min to max). Returns ``path`` (PNG)."""
    rows, cols = fields.shape[:2]
    lines = fields.ndim == 3
    # square pixels, unless the panels are strips (a space–time image of a few steps)
    aspect = "auto" if not lines and max(fields.shape[2:]) > 4 * min(fields.shape[2:]) else None
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, (1.6 if lines else 2.2) * rows),
                             squeeze=False, constrained_layout=True)
    for r in range(rows):
        vmax = float(np.abs(fields[r]).max()) or 1.0
        lo, hi = float(fields[r].min()), float(fields[r].max())
        pad = 0.05 * (hi - lo) or 1.0
        for c in range(cols):
            ax = axes[r, c]
            if lines:
                ax.plot(fields[r, c], lw=1)
                ax.set_ylim(lo - pad, hi + pad)
            else:
                im = ax.imshow(fields[r, c].T, origin="lower", cmap=cmap, vmin=-vmax, vmax=vmax,
                               aspect=aspect)
                ax.set_yticks([])
            ax.set_xticks([])
            if r == 0:
                ax.set_title(col_titles[c], fontsize=9)
        if not lines:
            fig.colorbar(im, ax=axes[r, -1], shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _save(fig: plt.Figure, path: Path, dpi: int) -> Path:
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_error_histogram(errors: dict[str, np.ndarray], path: Path, *, xlabel: str = "relative L2",
                         bins: int = 30, figsize: tuple[float, float] = (5.0, 3.5),
                         dpi: int = 80) -> Path:
    """Histograms of per-sample errors, one per model in ``errors`` (label -> (n,)), on
    log-spaced bins since errors of surrogates spread over decades. Returns ``path`` (PNG)."""
    values = np.concatenate([np.ravel(v) for v in errors.values()])
    values = values[np.isfinite(values) & (values > 0)]
    lo, hi = (values.min(), values.max()) if values.size else (1e-3, 1.0)
    edges = np.geomspace(lo, max(hi, lo * 1.01), bins + 1)
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    for label, v in errors.items():
        ax.hist(np.ravel(v), bins=edges, histtype="step", label=label)
    ax.set_xscale("log")
    _tidy_log(ax.xaxis, edges)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)


def plot_spectra(spectra: dict[str, np.ndarray], path: Path, *,
                 colors: dict[str, str] | None = None,
                 figsize: tuple[float, float] = (5.0, 3.5), dpi: int = 80) -> Path:
    """Shell energy spectra ``E(k)`` (label -> (n_k,), index = integer wavenumber) on
    log-log axes, the mean mode left out. Returns ``path`` (PNG)."""
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    for label, e in spectra.items():
        k = np.arange(1, len(e))
        ax.loglog(k, np.asarray(e)[1:], **_style(label, colors))
    ax.set_xlabel("wavenumber |m| (periods per box)")
    ax.set_ylabel("E(k)")
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)


def plot_error_ecdf(errors: dict[str, np.ndarray], path: Path, *, xlabel: str = "relative L2",
                    colors: dict[str, str] | None = None,
                    figsize: tuple[float, float] = (5.0, 3.5), dpi: int = 80) -> Path:
    """Empirical CDFs of per-sample errors (label -> (n,)), log error axis when all are
    positive: every series stays visible where histograms would hide one behind another,
    and the median is read at 0.5. Non-finite values are left out. Returns ``path``."""
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    finite = {k: np.sort(np.ravel(v)[np.isfinite(np.ravel(v))]) for k, v in errors.items()}
    values = np.concatenate([v for v in finite.values()] or [np.ones(1)])
    for label, v in finite.items():
        if v.size:
            ax.step(np.r_[v[0], v], np.arange(v.size + 1) / v.size, where="post",
                    **_style(label, colors))
    if values.size and (values > 0).all():
        ax.set_xscale("log")
        _tidy_log(ax.xaxis, values)
    ax.set_xlabel(f"{xlabel} per sample")
    ax.set_ylabel("fraction of samples")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)


def plot_rollout(curves: dict[str, np.ndarray], path: Path, *, t: np.ndarray | None = None,
                 xlabel: str = "output step", ylabel: str = "relative L2",
                 colors: dict[str, str] | None = None,
                 figsize: tuple[float, float] = (5.0, 3.5), dpi: int = 80) -> Path:
    """Error against time: label -> (n_samples, n_steps); the median over samples as a line,
    the 10-90 % range as a band; log error axis. ``t`` (n_steps,): the times (default the
    step numbers 1, 2, ...). Returns ``path`` (PNG)."""
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    for label, err in curves.items():
        err = np.atleast_2d(err)
        x = np.arange(1, err.shape[1] + 1) if t is None else np.asarray(t)
        lo, med, hi = np.nanpercentile(err, [10, 50, 90], axis=0)
        style = _style(label, colors)
        line, = ax.plot(x, med, marker="o", ms=3, **style)
        if len(err) > 1:
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    _tidy_log(ax.yaxis, np.concatenate([np.ravel(c) for c in curves.values()]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (median, 10-90 %)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)


def plot_training(logs: dict[str, list[dict]], path: Path, *, test_key: str = "test_rel_l2",
                  test_label: str = "test rel. L2", colors: dict[str, str] | None = None,
                  figsize: tuple[float, float] = (8.0, 3.2), dpi: int = 80) -> Path:
    """Loss curves from each run's ``metrics.jsonl`` records (label -> records): the mean
    training loss (left) and the logged test error ``test_key`` (right) per epoch, log axes."""
    fig, axes = plt.subplots(1, 2, figsize=figsize, constrained_layout=True)
    for ax, key, name in ((axes[0], "train_loss", "training loss"),
                          (axes[1], test_key, test_label)):
        seen = []
        for label, records in logs.items():
            pts = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=2, **_style(label, colors))
                seen += [y for _, y in pts]
        ax.set_yscale("log")
        _tidy_log(ax.yaxis, np.asarray(seen))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path, dpi)


def plot_comparison(fields: np.ndarray, path: Path, *, title: str = "",
                    row_titles: Sequence[str] = ()) -> Path:
    """Truth, prediction and error (columns) of a few samples (rows): ``fields`` ``(rows, 3,
    x, y)`` as images or ``(rows, 3, x)`` as lines. Truth and prediction share one colour
    scale per row (viridis); the error has its own, a diverging map centred at 0, so small
    errors stay visible. Returns ``path`` (PNG)."""
    rows = fields.shape[0]
    lines = fields.ndim == 3
    aspect = "auto" if not lines and max(fields.shape[2:]) > 4 * min(fields.shape[2:]) else None
    fig, axes = plt.subplots(rows, 3, figsize=(8.4, (1.7 if lines else 2.4) * rows),
                             squeeze=False, constrained_layout=True)
    for r in range(rows):
        truth, pred, err = fields[r]
        both = np.concatenate([truth.ravel(), pred.ravel()])
        both = both[np.isfinite(both)]
        lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
        emax = float(np.nanmax(np.abs(err))) if np.isfinite(err).any() else 0.0
        emax = emax or 1.0
        for c, (f, name) in enumerate(zip(fields[r], ("truth", "prediction", "error"))):
            ax = axes[r, c]
            if lines:
                ax.plot(f, lw=1, color="C3" if c == 2 else "k")
                if c == 2:
                    ax.set_ylim(-1.05 * emax, 1.05 * emax)
                    ax.axhline(0, color="0.6", lw=0.5)
                else:
                    pad = 0.05 * (hi - lo) or 1.0
                    ax.set_ylim(lo - pad, hi + pad)
            else:
                kw = (dict(cmap="RdBu_r", vmin=-emax, vmax=emax) if c == 2
                      else dict(cmap="viridis", vmin=lo, vmax=hi))
                im = ax.imshow(f.T, origin="lower", aspect=aspect, **kw)
                ax.set_yticks([])
                if c:
                    fig.colorbar(im, ax=ax, shrink=0.85)
            ax.set_xticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
        if r < len(row_titles):
            axes[r, 0].set_ylabel(row_titles[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, 80)


def plot_particles(truth: np.ndarray, pred: np.ndarray, path: Path, *,
                   titles: Sequence[str] = (), color: str | None = None, title: str = "",
                   limits: tuple[float, float] = (0.0, 1.0)) -> Path:
    """Particle positions, truth (black) and prediction (``color``) overlaid, one panel per
    time: ``truth``, ``pred`` ``(times, particles, 2)`` in m; square box ``limits``."""
    n = len(truth)
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 3.0), squeeze=False,
                             constrained_layout=True)
    size = max(0.5, min(6.0, 3000.0 / truth.shape[1]))
    for i, ax in enumerate(axes[0]):
        ax.scatter(truth[i, :, 0], truth[i, :, 1], s=size, c="k", label="truth", lw=0)
        ax.scatter(pred[i, :, 0], pred[i, :, 1], s=size, c=color or "C0", alpha=0.6,
                   label="prediction", lw=0)
        ax.set_xlim(*limits)
        ax.set_ylim(*limits)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        if i < len(titles):
            ax.set_title(titles[i], fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="upper right", markerscale=3)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, 80)


def plot_cluster_map(points: np.ndarray, labels: np.ndarray, path: Path, *,
                     medoids: np.ndarray | None = None, xlabel: str = "", ylabel: str = "",
                     figsize: tuple[float, float] = (4.5, 4.0), dpi: int = 80) -> Path:
    """Scatter of 2-D ``points`` (n, 2) (parameters or an embedding) coloured by cluster
    ``labels`` (n,), medoids (indices) ringed. Returns ``path`` (PNG)."""
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=8)
    if medoids is not None:
        ax.scatter(points[medoids, 0], points[medoids, 1], facecolors="none",
                   edgecolors="k", s=60, linewidths=1.2, label="medoids")
        ax.legend(fontsize=8)
    fig.colorbar(sc, ax=ax, label="cluster")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _save(fig, path, dpi)


def plot_projection_error_vs_rank(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
                                  *, figsize: tuple[float, float] = (5.0, 3.5),
                                  dpi: int = 80) -> Path:
    """Mean projection error against basis rank: label -> (ranks, errors), log error axis
    (e.g. global POD, sine local POD, k-means local POD). Returns ``path`` (PNG)."""
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    for label, (ranks, err) in curves.items():
        ax.semilogy(ranks, err, marker="o", ms=3, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("mean relative projection error")
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)
