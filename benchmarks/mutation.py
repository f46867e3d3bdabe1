"""Mutation testing of the numerical core: do the tests notice wrong physics?

For each core module, mutmut (pinned in the ``bench`` extra) writes mutants of its
functions (operator swaps, changed constants, dropped arguments, ``True``/``False``, ...;
docstrings and identical mutants are skipped). A seeded sample of ``--n`` of them is run
against that module's own test files only (``MODULES``), each mutant running just the tests
that reach the mutated function (``pytest -p no:randomly -x -q``, a CPU-time limit per mutant;
a timeout counts as killed). Everything happens in a temporary copy of ``sciops/`` and
``tests/``: the tree is never mutated. Results go to ``benchmarks/results/mutation.json``:
per module the mutants run, killed, survived, score, and every survivor as line + diff.

    .venv/bin/python benchmarks/mutation.py                      # every module, n=60
    .venv/bin/python benchmarks/mutation.py --module sciops/spectral.py --n 100

A run with ``--module`` updates only that module's entry of the results file.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "mutation.json"

# module -> its targeted tests: its own test files (spectral.py also holds the truncated
# transforms of the FNO spectral convolution, tested in test_spectral_conv.py, and the sine
# series of the random fields and poisson2d, tested there), plus the
# residual tests of the PDE modules
_SEMILINEAR_TESTS = ["tests/test_semilinear.py", "tests/test_catalog_1d.py",
                     "tests/test_catalog_2d.py", "tests/test_residuals.py"]
MODULES: dict[str, list[str]] = {
    "sciops/spectral.py": ["tests/test_spectral.py", "tests/test_spectral_conv.py",
                           "tests/test_random_fields.py", "tests/test_poisson2d.py"],
    "sciops/train/losses.py": ["tests/test_losses.py"],
    "sciops/evaluate/metrics.py": ["tests/test_metrics.py"],
    "sciops/pdes/__init__.py": ["tests/test_pde_base.py"],
    "sciops/pdes/base.py": ["tests/test_pde_base.py"],
    "sciops/pdes/semilinear.py": _SEMILINEAR_TESTS,
    **{f"sciops/pdes/{name}.py": [f"tests/test_{name}.py", "tests/test_residuals.py"]
       for name in ("ns2d", "wave2d", "poisson2d", "darcy2d", "les3d")},
    "sciops/pdes/mpm2d.py": ["tests/test_mpm2d.py"],
    "sciops/pdes/antiderivative1d.py": ["tests/test_residuals.py"],
}

# mutant name -> why it cannot change behaviour (counted apart, not in the score)
EQUIVALENT: dict[str, str] = {
    "sciops.evaluate.metrics.x_energy_spectrum__mutmut_75":
        "torch.cat(parts, dim=0) -> torch.cat(parts): dim=0 is the default",
    "sciops.pdes.ns2d.xǁNS2Dǁsolve__mutmut_108":
        "keys of frames[1] for frames[0]: all frames have the same keys and there are always "
        ">= 2 (n_records >= 1)",
    "sciops.pdes.poisson2d.xǁPoisson2Dǁresidual__mutmut_20":
        "u.shape[-1] -> u.shape[+1]: u is (batch, n, n), so both are n",
    "sciops.spectral.x_inverse_laplacian__mutmut_34":
        "inner where k2 > 0 -> k2 >= 0: it only guards the division; the outer where sets the "
        "k2 = 0 mode to 0 either way (wavenumbers carry no gradient)",
    "sciops.spectral.x_irfft__mutmut_4":
        "dim=range(-d, 0) -> dim=None: with s of length d, irfftn transforms the last d dims",
    "sciops.spectral.x_truncated_irfftn__mutmut_113":
        "_use_matmul chooses between two implementations of the same transform (FFT or DFT "
        "matrix) by speed; inverting it changes the time, not the values",
    "sciops.spectral.x_sine_series_at__mutmut_23":
        "device=x.device -> device=None: the same device on a CPU run",
    "sciops.pdes.poisson2d.xǁPoisson2Dǁpoint_sample__mutmut_14":
        "f_hat.shape[-1] -> f_hat.shape[+1]: the sample's f_hat is (M, M), both are M",
    "sciops.pdes.antiderivative1d.xǁAntiderivative1Dǁpoint_sample__mutmut_4":
        "f_modes[:1] -> f_modes[:2]: only row 0 of the series is returned",
    "sciops.pdes.darcy2d.x_bilinear_prolongation__mutmut_41":
        "csr_matrix without shape=(mf, mc): the largest row index is 2 mc = mf - 1 and the "
        "largest column mc - 1, so the inferred shape is the same",
}

# mutmut exit codes: 0 tests passed, 5 no test collected, 33 no test reaches the function
SURVIVED = {0, 5, 33}
NOT_RUN = {None, 2, 34}
PYTEST_ARGS = ["-p", "no:randomly", "-x", "-q"]


def _mutmut(work: Path, *args: str, check: bool = True) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, env=env,
                          capture_output=True, text=True)
    if check and proc.returncode:
        raise RuntimeError(f"mutmut {args[0]} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def _workdir(module: str, tests: list[str]) -> Path:
    """A temporary copy of the package and tests, configured to mutate ``module`` only."""
    work = Path(tempfile.mkdtemp(prefix="sciops-mutation-"))
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("sciops", "tests"):
        shutil.copytree(ROOT / name, work / name, ignore=skip)
    config = (ROOT / "pyproject.toml").read_text() + (
        "\n[tool.mutmut]\n"
        'source_paths = ["sciops"]\n'
        f"only_mutate = [{json.dumps(module)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}\n")
    (work / "pyproject.toml").write_text(config)
    return work


def _function_lines(source: str) -> dict[str, int]:
    """mutmut's mangled function name (``x_f``, ``xǁClassǁf``) -> line of its ``def``."""
    lines = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines[f"x_{node.name}"] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines[f"xǁ{node.name}ǁ{sub.name}"] = sub.lineno
    return lines


def _describe(work: Path, name: str, def_lines: dict[str, int]) -> dict:
    """Line in the original file and the changed line of one mutant."""
    diff = _mutmut(work, "show", name).splitlines()
    hunk = next(i for i, s in enumerate(diff) if s.startswith("@@"))
    offset = int(re.match(r"@@ -(\d+)", diff[hunk]).group(1))
    body = diff[hunk + 1:]
    first = next(i for i, s in enumerate(body) if s.startswith("-"))
    old = [s[1:].strip() for s in body if s.startswith("-")]
    new = [s[1:].strip() for s in body if s.startswith("+")]
    func = name.rsplit(".", 1)[1].split("__mutmut_")[0]
    line = def_lines[func] + offset - 1 + sum(not s.startswith("+") for s in body[:first])
    return {"mutant": name, "line": line, "from": " / ".join(old), "to": " / ".join(new)}


def run_module(module: str, n: int, seed: int) -> dict:
    """Run a seeded sample of ``n`` mutants of ``module``; return its results entry."""
    tests = MODULES[module]
    work = _workdir(module, tests)
    t0 = time.perf_counter()
    try:
        # mutmut has no generate-only command: a filter that matches nothing makes it stop
        # right after writing the mutants and recording which tests reach which function.
        _mutmut(work, "run", "--max-children", "1", "no-such-mutant", check=False)
        meta_path = work / "mutants" / (module + ".meta")
        names = sorted(json.loads(meta_path.read_text())["exit_code_by_key"]) \
            if meta_path.exists() else []
        stats_path = work / "mutants" / "mutmut-stats.json"
        reached = set(json.loads(stats_path.read_text())["tests_by_mangled_function_name"]) \
            if names else set()
        sample = sorted(random.Random(seed).sample(names, min(n, len(names))))
        to_run = [m for m in sample if m not in EQUIVALENT and m.split("__mutmut_")[0] in reached]
        if to_run:
            _mutmut(work, "run", "--max-children", "1", *to_run)
        codes = json.loads(meta_path.read_text())["exit_code_by_key"] if names else {}
        unchecked = [m for m in to_run if codes[m] in NOT_RUN]
        if unchecked:
            raise RuntimeError(f"mutants not checked: {unchecked}")
        # a sampled mutant that no test reaches was not run: it survives
        survivors = [m for m in sample if m not in EQUIVALENT
                     and (m not in to_run or codes[m] in SURVIVED)]
        counted = len(sample) - sum(m in EQUIVALENT for m in sample)
        def_lines = _function_lines((ROOT / module).read_text())
        return {
            "mutants_generated": len(names),
            "mutants_run": counted,
            "killed": counted - len(survivors),
            "survived": len(survivors),
            "equivalent": [{"mutant": m, "reason": EQUIVALENT[m]} for m in sample
                           if m in EQUIVALENT],
            "score": round((counted - len(survivors)) / counted, 3) if counted else None,
            "survivors": [dict(_describe(work, m, def_lines), reached=m in to_run)
                          for m in survivors],
            "test_command": "pytest " + " ".join(PYTEST_ARGS + tests)
                            + "  (per mutant: only the tests that reach the mutated function)",
            "seed": seed,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", choices=sorted(MODULES),
                    help="module to mutate (repeatable; default: all)")
    ap.add_argument("--n", type=int, default=60, help="mutants sampled per module")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    for module in args.module or list(MODULES):
        entry = run_module(module, args.n, args.seed)
        # read just before writing: another run may have updated other modules meanwhile
        results = json.loads(args.out.read_text()) if args.out.exists() else {"modules": {}}
        results["modules"][module] = entry
        print(f"{module}: {entry['killed']}/{entry['mutants_run']} killed "
              f"(score {entry['score']}, {entry['seconds']} s)", flush=True)
        for s in entry["survivors"]:
            print(f"  line {s['line']}: {s['from']}  ->  {s['to']}")
        write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
