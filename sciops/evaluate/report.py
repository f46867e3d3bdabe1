"""Figures and Markdown for reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_snapshots(fields: np.ndarray, times: Sequence[float], path: Path, *,
                   title: str = "", cmap: str = "RdBu_r") -> Path:
    """Grid of 2-D snapshots: ``fields`` (rows, cols, x, y), one row per sample and one column
    per time in ``times``; symmetric colour range per row. Returns ``path`` (PNG)."""
    rows, cols = fields.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False,
                             constrained_layout=True)
    for r in range(rows):
        vmax = float(np.abs(fields[r]).max()) or 1.0
        for c in range(cols):
            ax = axes[r, c]
            im = ax.imshow(fields[r, c].T, origin="lower", cmap=cmap, vmin=-vmax, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {times[c]:g}", fontsize=9)
        fig.colorbar(im, ax=axes[r, -1], shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
