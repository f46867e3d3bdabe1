"""Figures and Markdown for reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)


def plot_spectra(spectra: dict[str, np.ndarray], path: Path, *,
                 figsize: tuple[float, float] = (5.0, 3.5), dpi: int = 80) -> Path:
    """Shell energy spectra ``E(k)`` (label -> (n_k,), index = integer wavenumber) on
    log-log axes, the mean mode left out. Returns ``path`` (PNG)."""
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    for label, e in spectra.items():
        k = np.arange(1, len(e))
        ax.loglog(k, np.asarray(e)[1:], label=label)
    ax.set_xlabel("wavenumber |m| (periods per box)")
    ax.set_ylabel("E(k)")
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)


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


def plot_rollout(curves: dict[str, np.ndarray], path: Path, *,
                 figsize: tuple[float, float] = (5.0, 3.5), dpi: int = 80) -> Path:
    """Error against output step (label -> (n_steps,)), log error axis. Returns ``path``."""
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    for label, err in curves.items():
        ax.semilogy(np.arange(1, len(err) + 1), err, marker="o", ms=3, label=label)
    ax.set_xlabel("output step")
    ax.set_ylabel("relative L2")
    ax.legend(fontsize=8)
    return _save(fig, path, dpi)
