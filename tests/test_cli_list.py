"""`sciops list`: sections, aligned columns, descriptions wrapped (never cut) to the terminal
width; the PDE methods come from one place; a plug-in that fails to import is skipped with
one warning line; the pointwise-solver types are exported from ``sciops.pdes``."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from sciops import models, pdes
from sciops.cli import _headline, main
from sciops.data import known_recipes
from sciops.pdes import base

TITLES = ["PDEs (methods):", "Dataset recipes:", "Models:", "Training recipes (model, dataset):",
          "Problem recipes (PDE):"]


def run_list(capsys, monkeypatch, columns: int, *args: str) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["list", *args]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    return out.out.splitlines()


def sections(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        if line and not line.startswith(" "):
            out[line] = []
        elif line:
            out[list(out)[-1]].append(line)
    return out


def rows(lines: list[str], n_cols: int) -> dict[str, tuple[list[str], str, int]]:
    """Row name -> (the columns before the description, the description re-joined from its
    wrapped lines, the description's start column)."""
    out: dict[str, tuple[list[str], str, int]] = {}
    for line in lines:
        if line.startswith("   "):  # a continuation: indented exactly to the description
            name = list(out)[-1]
            cols, text, start = out[name]
            if not text:  # the description is below the columns (narrow terminal)
                start = len(line) - len(line.lstrip())
            assert line[:start].strip() == "" and line[start] != " ", line
            out[name] = (cols, f"{text} {line[start:]}".strip(), start)
            continue
        parts = re.split(r"(\s{2,})", line.strip())
        cells = parts[0::2]
        start = len(line) - len(line.lstrip()) + sum(map(len, parts[:2 * n_cols]))
        out[cells[0]] = (cells[:n_cols], line[start:], start)
    return out


def column_starts(line: str, cells: list[str]) -> tuple[int, ...]:
    starts, pos = [], 0
    for c in cells:
        pos = line.index(c, pos)
        starts.append(pos)
        pos += len(c)
    return tuple(starts)


def test_list_shows_five_aligned_sections_wrapped_to_the_terminal(capsys, monkeypatch):
    lines = run_list(capsys, monkeypatch, 80)
    found = sections(lines)
    assert list(found) == TITLES
    assert max(map(len, lines)) <= 80
    for title, n_cols in zip(TITLES, (2, 3, 1, 3, 2)):
        table = rows(found[title], n_cols)
        # aligned: every description starts in the same column, and so does every column
        assert len({start for _, _, start in table.values()}) == 1, title
        assert len({column_starts(line, table[line.split()[0]][0])
                    for line in found[title] if not line.startswith("   ")}) == 1, title
    pde_rows = rows(found["PDEs (methods):"], 2)
    assert set(pde_rows) == set(pdes.available())
    assert pde_rows["heat1d"][0][1] == "generate, verify, pinn"
    assert pde_rows["ks2d"][0][1] == "generate, verify"  # no pointwise residual (box mean)
    assert pde_rows["poisson2d"][0][1] == "generate, pinn, gp-kron"
    assert pde_rows["darcy2d"][0][1] == "generate"
    assert pde_rows["wave2d"][1] == pdes.get("wave2d").__doc__.strip().splitlines()[0]
    model_rows = rows(found["Models:"], 1)
    assert list(model_rows) == models.available()
    for name, (_, text, _) in model_rows.items():  # wrapped, never truncated
        assert text == models.factory(name).__doc__.strip().splitlines()[0]
    assert list(rows(found["Dataset recipes:"], 3)) == list(known_recipes())
    solver = rows(found["Training recipes (model, dataset):"], 3)
    assert list(solver) == list(known_recipes("solvers"))
    assert solver["deeponet-antiderivative"] == (
        ["deeponet-antiderivative", "deeponet", "antiderivative1d"],
        "DeepONet on antiderivative1d", solver["deeponet-antiderivative"][2])
    problem = rows(found["Problem recipes (PDE):"], 2)
    assert list(problem) == list(known_recipes("problems"))
    assert problem["gp-hm-poisson1d-sin100"][0] == ["gp-hm-poisson1d-sin100", "poisson1d"]


def test_narrow_terminal_wraps_with_a_hanging_indent_and_keeps_every_word(capsys, monkeypatch):
    wide = rows(run_list(capsys, monkeypatch, 200, "models")[1:], 1)
    narrow_lines = run_list(capsys, monkeypatch, 60, "models")
    assert narrow_lines[0] == "Models:" and len(narrow_lines) > len(wide) + 1
    assert max(map(len, narrow_lines)) <= 60
    narrow = rows(narrow_lines[1:], 1)
    assert {k: v[1] for k, v in narrow.items()} == {k: v[1] for k, v in wide.items()}


@pytest.mark.parametrize("section, title",
                         list(zip(["pdes", "datasets", "models", "solvers"], TITLES)))
def test_one_section(capsys, monkeypatch, section, title):
    lines = run_list(capsys, monkeypatch, 100, section)
    assert list(sections(lines)) == [title]


def test_headline_drops_citations_but_not_math():
    assert _headline("FNO-2D on ns2d (Li et al. 2021): vorticity at t=0..9. More.") == \
        "FNO-2D on ns2d"
    assert _headline("1D u_t = nu u_xx + rho u (1 - u), PDEBench setting (Takamoto et al. "
                     "2022, \"PDEBench\"; x): rest") == "1D u_t = nu u_xx + rho u (1 - u), " \
                                                       "PDEBench setting"
    assert _headline("Taylor-Green vortex at Re=1600 (V0=1, box [0,2pi)^3): LES. Ref.") == \
        "Taylor-Green vortex at Re=1600"
    assert _headline("2D KS u_t + (|grad u|^2 - <|grad u|^2>)/2 = 0, setting (Koehler et al. "
                     "2024).") == "2D KS u_t + (|grad u|^2 - <|grad u|^2>)/2 = 0, setting"


def test_help_names_the_sections(capsys):
    for argv in (["--help"], ["list", "--help"]):
        assert main(argv) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert all(s in out for s in ("pdes", "datasets", "models", "solvers")), out
    assert main(["solve", "--help"]) == 0
    assert "sciops list pdes" in capsys.readouterr().out


def test_every_model_has_a_plain_one_line_description():
    for name in models.available():
        doc = models.factory(name).__doc__ or ""
        first = doc.strip().splitlines()[0]
        assert first.endswith(".") and len(first) <= 95, (name, first)
        assert not re.search(r":\w+:`|``|module doc", first), (name, first)
        assert doc.strip().splitlines()[1:2] in ([], [""]), (name, "first line is a sentence")


def test_pointwise_types_are_exported():
    for name in ("Domain", "Condition", "PointSample", "dirichlet"):
        assert name in pdes.__all__ and getattr(pdes, name) is getattr(base, name)


def test_a_plugin_that_fails_on_import_is_skipped_with_one_warning(tmp_path):
    site = tmp_path / "site"
    info = site / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[sciops.pdes]\nbroken = broken_plugin:Broken\n")
    (site / "broken_plugin.py").write_text("raise ImportError('needs libfoo\\n(not installed)')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get(
        "PYTHONPATH", "")]), "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    warning = ("sciops: warning: skipped PDE plug-in broken = broken_plugin:Broken: "
               "ImportError: needs libfoo (not installed)")

    def sciops(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sciops.cli", *args], env=env,
                              capture_output=True, text=True, timeout=300)

    listed = sciops("list", "pdes")
    assert listed.returncode == 0 and listed.stderr.splitlines() == [warning]
    assert "heat1d" in listed.stdout and "broken" not in listed.stdout
    # any command: an unknown PDE is still one error line, after the one warning
    verify = sciops("verify", "nope")
    assert verify.returncode == 2
    assert verify.stderr.splitlines()[0] == warning and len(verify.stderr.splitlines()) == 2
    assert verify.stderr.splitlines()[1].startswith("sciops: error: unknown PDE 'nope'")
