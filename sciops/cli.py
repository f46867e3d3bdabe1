"""The ``sciops`` command: list, generate, info, train, solve, verify, predict, evaluate, rom,
demo.

Errors the user can fix (bad recipe, bad ``--set``, unwritable ``--out``, diverged solver)
print one line ``sciops: error: ...`` and exit with status 2. SIGINT and SIGTERM print one
line ``sciops: interrupted; rerun the same command to resume`` and exit with status 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from sciops.errors import TERMINATED, SciopsError


def _data_root() -> Path:
    return Path(os.environ.get("SCIOPS_DATA", "data"))


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SciopsError(f"--set {pair!r}: expected key=value")
        k, v = pair.split("=", 1)
        out[k.strip()] = v
    return out


LIST_SECTIONS = {
    "pdes": "PDEs and the methods each supports: generate (a dataset recipe or a reference "
            "solver), verify (a semilinear definition `sciops verify` checks), pinn and "
            "gp-kron (`sciops solve --method`)",
    "datasets": "dataset recipes (`sciops generate NAME`): PDE, default sample count, summary",
    "models": "models of the zoo (`[model] name` in a training recipe), one line each",
    "solvers": "training recipes (`sciops train NAME`): model, dataset, summary",
    "problems": "problem recipes (`sciops solve --recipe NAME`): PDE, summary",
}


def _doc_line(obj: object) -> str:
    """The first line of ``obj``'s docstring."""
    return ((obj.__doc__ or "").strip().splitlines() or [""])[0]


def _headline(text: str) -> str:
    """The leading clause of a recipe description without its asides: the text up to the
    first ``:``, ``;`` or sentence end outside brackets, less the asides: groups `` (...)``
    followed by punctuation, a space or the end that hold a year or a comma (citations,
    settings; ``rho u (1 - u)`` stays).
    ``"FNO-2D on ns2d (Li et al. 2021): vorticity ..."`` gives ``"FNO-2D on ns2d"``."""
    import re

    stack: list[int] = []
    asides: list[tuple[int, int]] = []
    end = len(text)
    for k, c in enumerate(text):
        if c in "([":
            stack.append(k)
        elif c in ")]" and stack:  # ")" may close a half-open interval "[0, 1)"
            start = stack.pop()
            if (not stack and text[start] == "(" and text[start - 1:start] == " "
                    and text[k + 1:k + 2] in ",;:. "
                    and re.search(r",\s|\b(19|20)\d\d\b", text[start:k])):
                asides.append((start - 1, k + 1))
        elif not stack and (c in ":;" or (c == "." and text[k + 1:k + 2] in ("", " ", "\n"))):
            end = k
            break
    head = text[:end]
    for a, b in reversed(asides):
        head = head[:a] + head[b:]
    return " ".join(head.split())


def _print_table(title: str, rows: list[tuple[str, ...]], width: int) -> None:
    """``title:`` then ``rows`` in aligned columns; the last column (a description) wraps to
    ``width`` characters with a hanging indent, never inside a word. When the columns leave
    it fewer than 30 characters, the description goes below them, indented by 6."""
    import textwrap

    print(f"{title}:")
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(len(rows[0]) - 1)] \
        if rows else []
    for *cols, text in rows:
        head = "  " + "".join(f"{c:<{w}}  " for c, w in zip(cols, widths))
        if width - len(head) < 30:
            print(head.rstrip())
            head = " " * 6
        lines = textwrap.wrap(text, max(width - len(head), 20), break_long_words=False,
                              break_on_hyphens=False)
        print((head + (lines[0] if lines else "")).rstrip())
        for line in lines[1:]:
            print(" " * len(head) + line)


def _list_rows(section: str) -> list[tuple[str, ...]]:
    """The rows of one section of `sciops list` (see :data:`LIST_SECTIONS`)."""
    if section == "pdes":
        from sciops import pdes
        from sciops.data import known_recipes, load_recipe
        from sciops.pdes.semilinear import SemilinearPDE
        from sciops.train.physics import solve_methods

        with_recipe = {load_recipe(name).pde for name in known_recipes()}
        rows = []
        for name in pdes.available():
            pde = pdes.get(name)
            methods = [m for m, ok in (
                ("generate", name in with_recipe or type(pde).solve is not pdes.PDE.solve),
                ("verify", isinstance(pde, SemilinearPDE))) if ok]
            rows.append((name, ", ".join(methods + list(solve_methods(pde))), _doc_line(pde)))
        return rows
    if section == "datasets":
        from sciops.data import known_recipes, load_recipe

        recipes = [load_recipe(name) for name in known_recipes()]
        return [(r.name, r.pde, f"{r.samples} sample{'s' * (r.samples != 1)}",
                 _headline(r.description))
                for r in recipes]
    if section == "models":
        from sciops import models

        return [(name, _doc_line(models.factory(name))) for name in models.available()]
    if section == "problems":
        from sciops.data import known_recipes
        from sciops.train.problems import load_problem

        problems = [load_problem(name) for name in known_recipes("problems")]
        return [(p.name, p.pde, _headline(p.description)) for p in problems]
    from sciops.data import known_recipes
    from sciops.train.config import load_run_config

    rows = []
    for name in known_recipes("solvers"):
        cfg = load_run_config(name)
        rows.append((name, str(cfg.model.get("name", "?")), cfg.data.dataset or "-",
                     _headline(cfg.description)))
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    import shutil

    width = shutil.get_terminal_size((100, 24)).columns
    titles = {"pdes": "PDEs (methods)", "datasets": "Dataset recipes", "models": "Models",
              "solvers": "Training recipes (model, dataset)",
              "problems": "Problem recipes (PDE)"}
    for k, section in enumerate([args.section] if args.section else list(LIST_SECTIONS)):
        if k:
            print()
        _print_table(titles[section], _list_rows(section), width)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from sciops.data import generate, load_recipe
    from sciops.data.generate import parse_shard

    shard = parse_shard(args.shard)
    recipe = load_recipe(args.recipe).with_changes(
        samples=args.samples, seed=args.seed, overrides=_overrides(args.set))
    out = Path(args.out) if args.out else _data_root() / recipe.name
    report = generate(recipe, out, shard=shard, device=args.device, overwrite=args.overwrite,
                      progress=not args.quiet, max_memory=args.max_memory)
    rate = report.samples_written / report.seconds if report.seconds > 0 else float("nan")
    state = "complete" if report.complete else "partial (other shards pending)"
    print(f"{out}: wrote {report.shards_written} shard(s), skipped {report.shards_skipped} "
          f"complete, {report.samples_written} samples in {report.seconds:.1f} s "
          f"({rate:.3g} samples/s); dataset {state}")
    return 0


def _info_foreign(path: Path) -> int:
    """``sciops info`` of a peer's file: its layout and the variables sciops reads from it."""
    from sciops.data import interop

    kind = interop.foreign_format(path)
    ds = interop.open_foreign(path)
    print(f"file      {path} ({kind}; read as is, not hashed: no manifest)")
    print(f"samples   {ds.sizes.get('sample', '?')}")
    for name, var in ds.data_vars.items():
        dims = ", ".join(f"{d}={n}" for d, n in zip(var.dims, var.shape))
        renamed = {"input": " (the file's x)", "output": " (the file's y)"}.get(name, "") \
            if kind == "neuraloperator .pt" else ""
        print(f"variable  {name} ({dims}) {var.dtype}{renamed}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from sciops.data import store

    root = Path(args.path)
    if root.is_file():
        if args.verify:
            raise SciopsError(f"info --verify {root}: a peer's file has no manifest of "
                              f"hashes to verify against")
        return _info_foreign(root)
    m = store.read_manifest(root)
    r = m["recipe"]
    done = sum(store.shard_record(root, j) is not None for j in range(m["n_shards"]))
    print(f"dataset   {root}")
    print(f"recipe    {r.get('name')} (pde {r.get('pde')}, seed {r.get('seed')}, "
          f"sciops {m.get('sciops_version')})")
    print(f"samples   {r.get('samples')} in {m['n_shards']} shard(s), {done} complete")
    params = r.get("params") if isinstance(r.get("params"), dict) else {}
    print("params    " + ", ".join(f"{k}={v}" for k, v in params.items()))
    unreadable = None
    if done:
        try:  # metadata only: hashing every shard is what --verify is for
            ds = store.open_dataset(root, allow_partial=True, check=False)
        except SciopsError as e:
            if not args.verify:
                raise
            unreadable = str(e)
        else:
            for name, var in ds.data_vars.items():
                dims = ", ".join(f"{d}={n}" for d, n in zip(var.dims, var.shape))
                print(f"variable  {name} ({dims}) {var.dtype} [{var.attrs.get('units', '')}]")
    if args.verify:
        problems = store.verify(root)
        if unreadable and not problems:
            problems = [unreadable]
        for p in problems:
            print(f"verify    FAIL {p}")
        if problems:
            print("verify    to repair: delete the failing shard files and rerun the same "
                  "`sciops generate` command (it regenerates missing shards)")
            return 1
        print(f"verify    OK: {m['n_shards']} shard(s) match their sha256")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from sciops.train import Trainer, load_run_config
    from sciops.train.config import resume_config
    from sciops.train.distributed import teardown

    overrides = _overrides(args.set)
    for key, value in (("data.dataset", args.data), ("model.name", args.model)):
        if value is not None:
            overrides[key] = value
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SciopsError(f"--out {out}: is a file, not a run directory; choose another --out")
    if args.resume and (out / "config.json").is_file():
        cfg = resume_config(out, args.recipe, overrides)
    elif args.recipe is None:
        raise SciopsError(f"name a training recipe (`sciops list`); --out {out} holds no run "
                          f"to resume" if args.resume else "name a training recipe "
                          "(`sciops list`), or pass --resume to continue the run in --out")
    elif not args.resume and (out / "last.pt").exists():
        raise SciopsError(f"--out {out}: holds a run already; pass --resume to continue it "
                          f"or choose another --out")
    else:
        cfg = load_run_config(args.recipe, overrides)
    trainer = Trainer(cfg, out, device=args.device, progress=not args.quiet,
                      max_memory=args.max_memory)
    try:
        last = trainer.fit(resume=args.resume, max_steps=args.max_steps)
    finally:
        teardown()  # a torchrun rank leaves its process group
    if trainer.ctx.main:
        print(trainer.summary(last))
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from sciops.train.physics import solve_instance
    from sciops.train.problems import load_problem

    pde, sets, options = args.pde, _overrides(args.set), _overrides(args.option)
    exact, eval_points = args.exact, args.eval_points
    if args.recipe:  # the command line wins over the recipe
        r = load_problem(args.recipe)
        if pde not in (None, r.pde):
            raise SciopsError(f"--recipe {args.recipe} is a {r.pde} problem, not {pde}")
        pde, sets, options = r.pde, {**r.params, **sets}, {**r.options.get(args.method, {}),
                                                           **options}
        exact, eval_points = exact or r.exact, eval_points or r.eval_points
    elif pde is None:
        raise SciopsError("name a PDE (`sciops list pdes`) or a problem --recipe")
    summary = solve_instance(pde, sets, args.method, Path(args.out), seed=args.seed,
                             options=options, device=args.device, progress=not args.quiet,
                             exact=exact, eval_points=eval_points)
    errors = ", ".join(f"{k} {v:.3g}" for k, v in summary["rel_l2"].items()) or "n/a"
    print(f"{pde} by {args.method} in {summary['wall_s']:.1f} s; rel. L2 vs the "
          f"{summary['reference']}: {errors}; wrote {', '.join(summary['files'])} to {args.out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import torch

    from sciops import pdes
    from sciops.pdes.base import SolverDiverged
    from sciops.pdes.semilinear import SemilinearPDE
    from sciops.verify import verify

    try:
        pde = pdes.get(args.pde)
    except KeyError as e:
        raise SciopsError(str(e.args[0])) from None
    if not isinstance(pde, SemilinearPDE):
        raise SciopsError(f"verify {args.pde}: not defined by linear and nonlinear parts "
                          f"(sciops.pdes.semilinear); its checks live in the test suite")
    torch.set_num_threads(1)  # many small kernels: one thread is fastest
    try:
        checks = verify(pde, _overrides(args.set), seed=args.seed)
    except (ValueError, SolverDiverged) as e:  # parameters out of range, or too stiff to solve
        raise SciopsError(f"verify {args.pde}: {e}") from None
    for c in checks:
        print(c.line())
    failed = [c.name for c in checks if not c.passed]
    if failed:
        raise SciopsError(f"verify {args.pde}: {len(failed)} of {len(checks)} checks failed "
                          f"({', '.join(failed)})")
    print(f"{args.pde}: all {len(checks)} checks passed")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from sciops.train.predict import predict_dataset

    out = predict_dataset(args.run, args.data, args.out, device=args.device or "cpu",
                          progress=not args.quiet)
    print(f"predictions written to {out}")
    return 0


def _range(text: str | None) -> range | None:
    if text is None:
        return None
    try:
        lo, hi = (int(p) for p in text.split(":"))
    except ValueError:
        raise SciopsError(f"--samples {text}: expected START:STOP, e.g. 1000:1200") from None
    if not 0 <= lo < hi:
        raise SciopsError(f"--samples {text}: need 0 <= START < STOP")
    return range(lo, hi)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sciops.evaluate.compare import evaluate_runs

    path = evaluate_runs([Path(r) for r in args.runs], Path(args.data) if args.data else None,
                         Path(args.out), samples=_range(args.samples),
                         n_clusters=args.clusters, device=args.device or "cpu",
                         progress=not args.quiet, max_memory=args.max_memory)
    print(f"report: {path} (figures and metrics.json in {path.parent})")
    return 0


def cmd_rom(args: argparse.Namespace) -> int:
    from sciops.evaluate.rom_study import rom_study

    path = rom_study(Path(args.data), args.var, Path(args.out), k=args.k, rank=args.rank,
                     max_snapshots=args.max_snapshots, progress=not args.quiet)
    print(f"report: {path} (rom.json and rom.png in {path.parent})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from sciops.demo import run_demo

    path = run_demo(Path(args.out), device=args.device)
    print(f"demo report: {path}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error format: one line ``sciops: error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("sciops").strip()
        where = f"{command}: " if command else ""
        print(f"sciops: error: {where}{message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be >= {low}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sciops", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    import textwrap

    ls = sub.add_parser(
        "list", help="list PDEs with their methods, dataset recipes, models, training and problem "
        "recipes (sections: " + ", ".join(LIST_SECTIONS) + ")",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="List what sciops knows, in sections (all of them without SECTION):\n"
        + "\n".join(textwrap.fill(text, 78, initial_indent=f"  {name:<10}",
                                   subsequent_indent=" " * 12)
                     for name, text in LIST_SECTIONS.items()))
    ls.add_argument("section", nargs="?", choices=list(LIST_SECTIONS),
                    help="print only this section")
    ls.set_defaults(func=cmd_list)

    g = sub.add_parser("generate", help="generate (or resume) a dataset from a recipe")
    g.add_argument("recipe", help="dataset recipe (sciops list datasets) or TOML path")
    g.add_argument("--out", help="dataset directory (default: $SCIOPS_DATA/NAME, ./data/NAME)")
    g.add_argument("--samples", type=_at_least(1),
                   help="number of samples (default: the recipe's)")
    g.add_argument("--seed", type=int, help="master seed (default: the recipe's)")
    g.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a PDE parameter (repeatable)")
    g.add_argument("--shard", help="i/n: write shards j with j %% n == i (default: torchrun "
                   "RANK/WORLD_SIZE, else all)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if present)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--max-memory", metavar="SIZE", help="refuse up front if one batch is "
                   "estimated to need more, e.g. 8G (default: the machine's available memory)")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("info", help="describe a dataset; --verify re-hashes its shards")
    i.add_argument("path")
    i.add_argument("--verify", action="store_true")
    i.set_defaults(func=cmd_info)

    t = sub.add_parser("train", help="train a surrogate from a training recipe",
                       epilog="pinn is not trained here: it solves one PDE instance, see "
                       "`sciops solve PDE --method pinn`")
    t.add_argument("recipe", nargs="?", help="training recipe (sciops list) or TOML path; "
                   "optional with --resume (the run's config.json is used)")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--data", metavar="DIR", help="dataset directory or name (overrides the "
                   "recipe's data.dataset)")
    t.add_argument("--model", metavar="NAME", help="train this model of the zoo instead, with "
                   "its own defaults (the [model] table of its training recipe)")
    t.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE",
                   help="override a recipe value, e.g. train.lr=3e-4 or model.n_modes=8,8 "
                   "(repeatable)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out with its "
                   "stored config (options may only repeat it; train.max_minutes may change)")
    t.add_argument("--max-steps", type=_at_least(1), default=None,
                   help="stop after this global step")
    t.add_argument("--device", default=None, help="cpu, cuda (default: cuda if present)")
    t.add_argument("--max-memory", metavar="SIZE", help="refuse up front if a training step "
                   "needs more memory than this, e.g. 8G (default: the available memory)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("solve", help="solve one PDE instance with a physics-informed solver")
    s.add_argument("pde", nargs="?", help="PDE name; `sciops list pdes` shows the methods "
                   "each supports")
    s.add_argument("--recipe", metavar="NAME", help="a named problem (sciops/recipes/problems/, "
                   "e.g. gp-hm-poisson1d-sin100) or TOML path: PDE, parameters, --exact and "
                   "per-method options; the command line wins")
    s.add_argument("--method", default="pinn", choices=("pinn", "gp-kron"),
                   help="physics-informed network or Kronecker Gaussian process (default: "
                   "pinn); which PDE supports which: `sciops list pdes`")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a PDE parameter (repeatable)")
    s.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="solver option, e.g. adam_steps=2000 or model.width=64 (repeatable)")
    s.add_argument("--seed", type=int, default=0, help="sample seed of the instance")
    s.add_argument("--exact", metavar="EXPR", help="manufactured solution in the PDE's "
                   "coordinates, e.g. 'x*sin(20*x)' or 'u=...;v=...' for several unknowns "
                   "(numbers, + - * / **, pi, e, sin cos tan exp log sqrt tanh sinh cosh abs): "
                   "sources and boundary/initial data are derived from it")
    s.add_argument("--eval-points", type=int, metavar="N", help="with --exact: uniform grid "
                   "points per axis of the error against EXPR (default 257 in 1-D, 65 in 2-D, "
                   "33 in 3-D)")
    s.add_argument("--out", required=True, help="output directory: solution.nc, solution.png "
                   "(solution, reference, error), summary.json; pinn also run/ (log, weights)")
    s.add_argument("--device", default=None)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_solve)

    v = sub.add_parser("verify", help="check a PDE definition: temporal order, spatial "
                       "convergence, residuals under both backends, sensitivity")
    v.add_argument("pde", help="PDE name (see `sciops list`)")
    v.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a parameter of the verification case (repeatable)")
    v.add_argument("--seed", type=int, default=0, help="seed of the random initial fields")
    v.set_defaults(func=cmd_verify)

    pr = sub.add_parser("predict", help="predict a dataset with a trained run")
    pr.add_argument("run", help="run directory (uses best.pt, else last.pt)")
    pr.add_argument("--data", required=True, help="dataset directory")
    pr.add_argument("--out", required=True, help="output netCDF file")
    pr.add_argument("--device", default=None)
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(func=cmd_predict)

    e = sub.add_parser("evaluate", help="score runs or prediction files on a dataset; write "
                       "a Markdown report")
    e.add_argument("runs", nargs="+", help="run directories or prediction files (sciops "
                   "predict)")
    e.add_argument("--data", help="dataset directory or peer file (default: the one the runs "
                   "were trained on or the files predicted from)")
    e.add_argument("--out", required=True, help="report directory")
    e.add_argument("--samples", help="START:STOP sample range (default: the runs' test "
                   "split)")
    e.add_argument("--clusters", type=_at_least(1), default=None,
                   help="clusters for the error map, at most the scored samples (default: 4, "
                   "capped at their number)")
    e.add_argument("--max-memory", metavar="SIZE", help="refuse up front if the scored arrays "
                   "need more memory than this, e.g. 8G (default: the available memory)")
    e.add_argument("--device", default=None)
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("rom", help="local vs global POD study of a stored variable")
    r.add_argument("data", help="dataset directory or peer file")
    r.add_argument("--var", required=True, help="variable name, e.g. vorticity")
    r.add_argument("--k", type=_at_least(1), default=8, help="clusters")
    r.add_argument("--rank", type=_at_least(1), default=10, help="largest POD rank")
    r.add_argument("--max-snapshots", type=_at_least(2), default=2000)
    r.add_argument("--out", required=True, help="report directory")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_rom)

    d = sub.add_parser("demo", help="small end-to-end run writing a Markdown report")
    d.add_argument("--out", default="demo")
    d.add_argument("--device", default=None)
    d.set_defaults(func=cmd_demo)
    for name in COMPUTE_COMMANDS:
        sub.choices[name].add_argument(
            "--threads", type=_at_least(1), default=None, metavar="N",
            help="CPU threads for torch (intra- and inter-op; default: torch's, which "
            "follows OMP_NUM_THREADS)")
    return p


COMPUTE_COMMANDS = ("generate", "train", "solve", "verify", "predict", "evaluate", "rom", "demo")
"""Subcommands that take ``--threads``."""


def _set_threads(n: int) -> None:
    """Use ``n`` CPU threads in torch: intra-op always; inter-op only if still settable (torch
    allows it once, before any parallel work; a second ``main`` in one process keeps it)."""
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass


INTERRUPTED = "sciops: interrupted; rerun the same command to resume"


def _on_sigterm(signum: int, frame: object) -> None:
    # SIGTERM (kill, a batch scheduler's time limit) unwinds like Ctrl-C: shards and
    # checkpoints are written atomically, so the same command resumes where this one stopped.
    # A second SIGTERM during the unwinding ends the process at once (default action).
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    TERMINATED.set()
    raise KeyboardInterrupt


def _one_line(message: str) -> str:
    """A message on one line: embedded line breaks become spaces; never empty."""
    return " ".join(p.strip() for p in message.splitlines() if p.strip()) or "unspecified error"


def _exit_if_broken(status: int) -> None:
    """End the process at once if it holds an HDF5 file broken by a full disk (see
    ``store.UNCLOSABLE``): freeing it, or the error's traceback, makes HDF5 retry its writes
    and crash the interpreter. Its temporary file is already gone; nothing else is pending."""
    store = sys.modules.get("sciops.data.store")
    if store is not None and store.UNCLOSABLE:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status.

    0 success; 1 ``info --verify`` found damage; 2 a usage or input error (one line
    ``sciops: error: ...`` on stderr); 130 interrupted by SIGINT or SIGTERM (one line
    ``sciops: interrupted; ...``). SIGTERM exits 130, not 143, because it is handled the same
    way as Ctrl-C: the work unwinds cleanly and the same command resumes it.
    """
    import signal
    import threading

    from sciops.atomic import is_disk_full

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error, already printed on one line
        return e.code if isinstance(e.code, int) else 2
    if getattr(args, "threads", None):
        _set_threads(args.threads)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    TERMINATED.clear()
    unraisable = sys.unraisablehook
    # a SIGTERM's KeyboardInterrupt dropped inside a destructor is reported once, below
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, KeyboardInterrupt) \
        and TERMINATED.is_set() else unraisable(u)
    try:
        status = args.func(args)
        if TERMINATED.is_set():  # the handler's exception was dropped; the work may be done
            raise KeyboardInterrupt
        return status
    except SciopsError as e:
        print(f"sciops: error: {_one_line(str(e))}", file=sys.stderr)
        _exit_if_broken(2)
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (`sciops list | head`): not an error of ours;
        # point stdout at devnull so the interpreter's final flush stays quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, RuntimeError) as e:
        if not is_disk_full(e):
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"sciops: error: {where}disk full (No space left on device); free space and "
              f"rerun the same command (finished files are kept, partial ones are not)",
              file=sys.stderr)
        _exit_if_broken(2)
        return 2
    finally:
        sys.unraisablehook = unraisable
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
