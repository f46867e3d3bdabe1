"""GP-HM's benchmark problems by three solvers: gp-kron, the sciops PINN and DeepXDE's PINN.

    .venv/bin/python benchmarks/gp_hm.py [--only NAME ...] [--skip-deepxde] [--out FILE]

Writes ``benchmarks/results/gp_hm.json``. The problems are the problem recipes
``sciops/recipes/problems/gp-hm-*.toml`` (PDE, box, manufactured solution; Fang et al. ICLR
2024 and its authors' configs, see each recipe's description). Every solver works from the
PDE's single definition (its ``operator``):

* ``gp_kron`` and ``pinn_sciops``: ``sciops solve --recipe NAME --method ...`` (through
  :func:`sciops.train.physics.solve_instance`), the error against the expression on the
  recipe's evaluation grid;
* ``pinn_deepxde``: DeepXDE's PINN (PyTorch backend) whose PDE callback is the same
  ``operator`` under a derivative provider that calls ``dde.grad`` (the source ``f`` from the
  expression by autograd, as sciops does), Dirichlet data on the faces the PDE declares.

Budgets are modest (the whole run stays under ~30 min on two loaded cores) and are stored
in the JSON: both PINNs get the same network (3x64 tanh), points, Adam steps and L-BFGS
iterations; gp-kron gets fewer Adam steps in 2-D and a collocation grid coarser than the
paper's 400² where the solution is resolved by it (``GP_POINTS``). Needs ``deepxde`` (PyPI,
``pip install deepxde``; its rows are null without it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, peak_rss_mib, timed, write_json  # noqa: E402

from sciops import pdes  # noqa: E402
from sciops.data.recipes import known_recipes  # noqa: E402
from sciops.derivatives import AXES, Derivatives, Pointwise  # noqa: E402
from sciops.errors import SciopsError  # noqa: E402
from sciops.expression import compile_fields  # noqa: E402
from sciops.train.physics import solve_instance  # noqa: E402
from sciops.train.problems import ProblemRecipe, load_problem  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GP = {1: {"steps": 300, "lbfgs_steps": 50}, 2: {"steps": 60, "lbfgs_steps": 0},
      "gp-hm-advection": {"steps": 300, "lbfgs_steps": 50}}
"""gp-kron options per box dimension, or per problem where they differ (advection: its
kernel along t must find the frequency 200; 60 Adam steps leave 1.4e-2)."""
GP_POINTS = {"gp-hm-poisson2d-sin100": 256, "gp-hm-poisson2d-sin6cos20": 96,
             "gp-hm-allencahn2d-mix": 96, "gp-hm-advection": 128}
"""Collocation points per axis where they differ from the recipe's grid (2.5-4 per period of
the fastest mode: 100, 26, 16 and 32 periods per axis)."""
PINN = {1: {"n_interior": 400, "adam_steps": 2000, "lbfgs_steps": 500},
        2: {"n_interior": 2000, "adam_steps": 500, "lbfgs_steps": 100}}
"""Both PINNs, per box dimension: interior points, Adam steps (lr 1e-3), L-BFGS iterations."""
N_BOUNDARY = 64  # points per face carrying data (one point in 1-D)
NET = {"width": 64, "depth": 3, "activation": "tanh", "dtype": "float32"}


def _pinn_options(d: int) -> dict[str, str]:
    opts = {**PINN[d], "n_boundary": N_BOUNDARY, "lr": 1e-3, "sampling": "sobol",
            **{f"model.{k}": v for k, v in NET.items()}}
    return {k: str(v) for k, v in opts.items()}


def run_sciops(r: ProblemRecipe, method: str) -> dict[str, Any]:
    pde = pdes.get(r.pde)
    d = len(pde.domain(pde.make_params(r.params)).box)
    options = ({k: str(v) for k, v in GP.get(r.name, GP[d]).items()} if method == "gp-kron"
               else _pinn_options(d))
    if method == "gp-kron" and r.name in GP_POINTS:
        options["points"] = str(GP_POINTS[r.name])
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as out:
        try:
            s = solve_instance(r.pde, r.params, method, out, options=options, exact=r.exact,
                               eval_points=r.eval_points)
        except SciopsError as e:  # a diverged solve: recorded, not a number
            return {"rel_l2": None, "error": str(e), "wall_s": time.perf_counter() - t0,
                    "cpu_s": time.process_time() - c0, "options": options}
    return {"rel_l2": s["rel_l2"]["u"], "wall_s": s["wall_s"], "cpu_s": s["cpu_s"],
            "options": options}


class _DdeDerivatives(Derivatives):
    """Derivatives of DeepXDE's network output ``y`` (N, 1) at inputs ``x`` (N, d) by
    ``dde.grad`` (derivatives of ``y`` only, which the steady definitions need)."""

    def __init__(self, dde: Any, x: torch.Tensor, y: torch.Tensor):
        self.dde, self.x, self.y, self.ndim = dde, x, y, x.shape[1]

    def partial(self, u: torch.Tensor, axis: int, n: int = 1) -> torch.Tensor:
        if u is not self.y or n not in (1, 2):
            raise ValueError("DeepXDE provider: first and second derivatives of u only")
        if n == 1:
            return self.dde.grad.jacobian(self.y, self.x, i=0, j=axis)
        return self.dde.grad.hessian(self.y, self.x, i=axis, j=axis)


def run_deepxde(r: ProblemRecipe) -> dict[str, Any]:
    import deepxde as dde  # noqa: PLC0415  (optional peer, imported when run)

    dde.config.set_random_seed(0)
    dde.config.set_default_float("float32")
    pde = pdes.get(r.pde)
    params = pde.make_params(r.params)
    dom = pde.domain(params)
    names, d = list(dom.box), len(dom.box)
    exact = compile_fields(r.exact, names, dom.outputs)
    lo, hi = [b[0] for b in dom.box.values()], [b[1] for b in dom.box.values()]
    geom = dde.geometry.Interval(lo[0], hi[0]) if d == 1 else dde.geometry.Rectangle(lo, hi)

    def source(x: torch.Tensor) -> torch.Tensor:
        """``operator(u*)`` at ``x`` (N, d) by autograd, float64, as a column."""
        with torch.enable_grad():
            x_ = x.detach().double().requires_grad_()
            cols = {n: x_[:, i] for i, n in enumerate(names)}
            u = exact(cols)["u"]
            f = pde.operator(u, Pointwise({AXES[i]: cols[n] for i, n in enumerate(names)}, d),
                             params)
        return f.detach()[:, None]

    def residual(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pde.operator(y, _DdeDerivatives(dde, x, y), params) - source(x).to(y.dtype)

    def data(x: np.ndarray) -> np.ndarray:
        return exact({n: torch.as_tensor(x[:, i]) for i, n in enumerate(names)})["u"] \
            .numpy()[:, None]

    bcs = []
    for k in dom.conditions:  # Dirichlet faces (the steady definitions declare no others)
        i, v = names.index(k.coord), k.value
        bcs.append(dde.icbc.DirichletBC(
            geom, data, lambda x, on_b, i=i, v=v: on_b and np.isclose(x[i], v)))
    p = PINN[d]
    faces = len(bcs)
    problem = dde.data.PDE(geom, residual, bcs, num_domain=p["n_interior"],
                           num_boundary=faces * (1 if d == 1 else N_BOUNDARY),
                           train_distribution="Sobol")
    net = dde.nn.FNN([d] + [NET["width"]] * NET["depth"] + [1], "tanh", "Glorot normal")
    model = dde.Model(problem, net)

    def train() -> None:
        model.compile("adam", lr=1e-3)
        model.train(iterations=p["adam_steps"], display_every=10**9, verbose=0)
        dde.optimizers.set_LBFGS_options(maxiter=p["lbfgs_steps"])
        model.compile("L-BFGS")
        model.train(display_every=10**9, verbose=0)

    _, wall, cpu = timed(train)
    axes = [np.linspace(a, b, r.eval_points or 257) for a, b in dom.box.values()]
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], axis=1)
    pred, want = model.predict(pts.astype(np.float32))[:, 0], data(pts)[:, 0]
    err = float(np.linalg.norm(pred - want) / np.linalg.norm(want))
    return {"rel_l2": err if np.isfinite(err) else None,
            **({} if np.isfinite(err) else {"error": "non-finite prediction (diverged)"}),
            "wall_s": wall, "cpu_s": cpu, "deepxde": dde.__version__}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="problem recipe names")
    ap.add_argument("--skip-deepxde", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/gp_hm.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    have_dde = not args.skip_deepxde
    if have_dde:
        try:
            import deepxde  # noqa: F401, PLC0415
        except ImportError:
            have_dde = False
            print("deepxde is not installed: its rows are null (pip install deepxde)")
    t0, rows = time.perf_counter(), []
    if args.only and Path(args.out).is_file():  # rerun some problems, keep the others' rows
        rows = [r for r in json.loads(Path(args.out).read_text())["problems"]
                if r["problem"] not in args.only]
    for name in known_recipes("problems"):
        if not name.startswith("gp-hm-") or (args.only and name not in args.only):
            continue
        r = load_problem(name)
        row: dict[str, Any] = {"problem": name, "pde": r.pde, "exact": r.exact,
                               "params": r.params, "eval_points": r.eval_points}
        for key, run, args_ in (("gp_kron", run_sciops, ("gp-kron",)),
                                ("pinn_sciops", run_sciops, ("pinn",)),
                                ("pinn_deepxde", run_deepxde if have_dde else None, ())):
            row[key] = run(r, *args_) if run else None
            if row[key]:
                err = row[key]["rel_l2"]
                print(f"{name:32s} {key:13s} rel L2 "
                      f"{'diverged' if err is None else f'{err:.2e}'} "
                      f"{row[key]['wall_s']:.0f} s", flush=True)
        rows = sorted([*rows, row], key=lambda r: r["problem"])
        out = {"benchmark": "gp_hm", "machine": machine_info(),
               "budgets": {"gp_kron": GP, "gp_kron_points": GP_POINTS, "pinns": PINN,
                           "pinn_boundary_points_per_face": N_BOUNDARY, "pinn_net": NET,
                           "pinn_adam_lr": 1e-3, "threads": args.threads},
               "problems": rows, "peak_rss_mib": peak_rss_mib(),
               "total_wall_s": time.perf_counter() - t0}
        write_json(args.out, out)  # after every problem: a stopped run keeps what it measured
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
