"""``sciops rom``: is a stored solution manifold compressible by local reduced bases?

Snapshots of one variable (every sample, and every stored time if it has a time dim, up to
``max_snapshots`` evenly spread) are flattened to rows. The study compares, at each rank
``1..rank``, the mean relative projection error of a global POD basis, of local POD bases
on Euclidean k-means clusters, and of local POD bases on sine-dissimilarity k-medoids
clusters (oracle assignment), and writes ``rom.json``, ``rom.png`` and ``report.md``.
Particle data (a ``particle`` dim) are refused: their snapshots are not fields on one grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sciops import rom
from sciops.data import open_dataset
from sciops.errors import SciopsError
from sciops.evaluate import report
from sciops.train.predict import bar


def load_snapshots(data: Path, var: str, max_snapshots: int = 2000) -> np.ndarray:
    """``(n, d)`` float64 rows of ``var``: one per sample (and time), evenly subsampled."""
    ds = open_dataset(data)
    if var not in ds:
        raise SciopsError(f"{data}: no variable {var!r}; stored: {sorted(ds.data_vars)}")
    field = ds[var]
    if "particle" in field.dims:
        raise SciopsError(f"{data}: {var!r} is particle data (dims {', '.join(field.dims)}); "
                          f"the ROM study needs fields on a grid")
    lead = [d for d in ("sample", "time") if d in field.dims]
    stacked = field.stack(snapshot=lead).transpose("snapshot", ...)
    n = stacked.sizes["snapshot"]
    pick = np.unique(np.linspace(0, n - 1, min(n, max_snapshots)).round().astype(int))
    return stacked.isel(snapshot=pick).values.reshape(len(pick), -1).astype(np.float64)


def rom_study(data: Path, var: str, out: Path, *, k: int = 8, rank: int = 10,
              max_snapshots: int = 2000, seed: int = 0, progress: bool = False) -> Path:
    """Run the study on ``data[var]`` into ``out``; returns ``out/report.md``. ``k`` needs
    ``2 k`` snapshots, ``rank`` must be below the snapshot count and dimension. ``progress``:
    a bar over the ranks (on a TTY)."""
    for name, value, low in (("--k", k, 1), ("--rank", rank, 1),
                             ("--max-snapshots", max_snapshots, 2)):
        if value < low:
            raise SciopsError(f"{name} {value}: must be >= {low}")
    x = load_snapshots(data, var, max_snapshots)
    if len(x) < 2 * k:
        raise SciopsError(f"--k {k}: needs at least {2 * k} snapshots, {data} has {len(x)}")
    if rank >= min(x.shape):
        raise SciopsError(f"--rank {rank}: {len(x)} snapshots of dimension {x.shape[1]} are "
                          f"reproduced exactly from rank {min(x.shape)} on, so the errors would "
                          f"be round-off; allowed [1, {min(x.shape) - 1}]")
    out.mkdir(parents=True, exist_ok=True)
    sine_labels, _ = rom.kmedoids(rom.sine_dissimilarity(x), k, seed=seed)
    euclid_labels, _ = rom.kmeans(x, k, seed=seed)
    ranks = np.arange(1, rank + 1)
    curves: dict[str, list[float]] = {"global POD": [], "k-means local POD": [],
                                      "sine local POD": []}
    with bar(rank, "rom ranks", progress) as b:
        for r in ranks:
            curves["global POD"].append(
                float(rom.projection_error(x, rom.pod(x, rank=r)).mean()))
            for name, labels in (("k-means local POD", euclid_labels),
                                 ("sine local POD", sine_labels)):
                bases = rom.local_pod(x, labels, rank=int(r))
                curves[name].append(float(rom.local_projection_error(x, labels, bases).mean()))
            b.update(1)
    png = report.plot_projection_error_vs_rank(
        {name: (ranks, np.asarray(v)) for name, v in curves.items()}, out / "rom.png")
    result = {"data": str(data), "var": var, "snapshots": len(x), "k": k,
              "ranks": ranks.tolist(), "mean_projection_error": curves,
              "gain_sine_vs_global_at_rank":
                  curves["global POD"][-1] / curves["sine local POD"][-1],
              "gain_sine_vs_kmeans_at_rank":
                  curves["k-means local POD"][-1] / curves["sine local POD"][-1]}
    (out / "rom.json").write_text(json.dumps(result, indent=2))
    lines = [f"# ROM study: `{var}` of `{data}`", "",
             f"{len(x)} snapshots of dimension {x.shape[1]}, k={k} clusters, ranks 1..{rank}.",
             "", "| rank | global POD | k-means local POD | sine local POD |", "|---|---|---|---|"]
    for i, r in enumerate(ranks):
        lines.append(f"| {r} | " + " | ".join(f"{curves[n][i]:.3e}" for n in curves) + " |")
    lines += ["", f"At rank {rank}, sine-clustered local bases are "
              f"{result['gain_sine_vs_global_at_rank']:.1f}x better than the global basis and "
              f"{result['gain_sine_vs_kmeans_at_rank']:.1f}x better than Euclidean clusters "
              "(oracle cluster assignment).", "", f"![projection error vs rank]({png.name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
