"""The README's command blocks (Tour, Bring your own data, Pose your own problem), read from
the README itself, so README and code cannot drift apart.

Fast: every command parses with the CLI's own parser, names recipes and PDEs that exist, and
reads only what an earlier command of its section wrote or the section says the user brings
(the commands chain). Slow: each section's commands run verbatim, in order, in an empty
folder (with stand-ins for the files the user brings); each must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import torch

from sciops import cli, pdes
from sciops.data import known_recipes

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTIONS = ("Tour", "Bring your own data", "Pose your own problem")
BROUGHT = {"Bring your own data": ("data/darcy_train_16.pt", "data/darcy_test_16.pt",
                                   "data/darcy_test_32.pt")}
"""Files a section's reader is told to bring (the slow test writes stand-ins)."""


def section(name: str = "Tour") -> list[str]:
    """The command lines of the first sh block of README section ``## name`` (comments and
    ``. .venv/...`` dropped)."""
    text = README.read_text()
    block = re.search(rf"^## {re.escape(name)}\n(?:(?!^## ).)*?^```sh\n(.*?)^```", text,
                      re.S | re.M)
    assert block, f"README has no ## {name} section with a sh block"
    lines = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] != ".":
            lines.append(line)
    return lines


def tour() -> list[str]:
    """The Tour's command lines."""
    return section("Tour")


def _argv(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    assert words[0] == "sciops", line
    return words[1:]


@pytest.mark.parametrize("name", SECTIONS)
def test_commands_parse_and_name_what_exists(name):
    parser = cli.build_parser()
    datasets, solvers = known_recipes("datasets"), known_recipes("solvers")
    commands = section(name)
    assert len(commands) >= (8 if name == "Tour" else 3)
    for line in commands:
        args = parser.parse_args(_argv(line))
        if args.command == "generate":
            assert args.recipe in datasets, line
        if args.command == "train" and args.recipe:
            assert args.recipe in solvers, line
        if args.command in ("solve", "verify"):
            assert args.pde in pdes.available(), line


@pytest.mark.parametrize("name", SECTIONS)
def test_commands_chain(name):
    """Each path a command reads was written by an earlier command (``--out``) of its section
    or is one the section asks the reader to bring."""
    parser = cli.build_parser()
    written: list[str] = list(BROUGHT.get(name, ()))
    for line in section(name):
        args = parser.parse_args(_argv(line))
        reads = []
        if args.command in ("info", "rom"):
            reads.append(args.path if args.command == "info" else args.data)
        if args.command in ("predict", "evaluate", "train") and getattr(args, "data", None):
            reads.append(args.data)
        if args.command == "predict":
            reads.append(args.run)
        if args.command == "evaluate":
            reads += args.runs
        if args.command == "train" and args.resume:
            reads.append(args.out)
        for path in reads:
            assert any(path == w or path.startswith(w.rstrip("/") + "/") for w in written), (
                f"`{line}` reads {path}, which no earlier command of {name!r} wrote")
        if getattr(args, "out", None):
            written.append(args.out)


def _bring(root: Path, name: str) -> None:
    """Stand-ins for the files a section asks for: neuraloperator-layout Darcy pairs (x a
    boolean coefficient, y a smooth function of it) with the real files' sample counts."""
    g = torch.Generator().manual_seed(0)
    for path in BROUGHT.get(name, ()):
        m = 32 if path.endswith("_32.pt") else 16
        n = 1000 if "train" in path else 50
        x = torch.rand(n, m, m, generator=g) > 0.5
        y = torch.fft.irfft2(torch.fft.rfft2(x.float()) / (1 + torch.arange(m // 2 + 1)))
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"x": x, "y": y}, root / path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SECTIONS)
def test_section_runs_verbatim(name, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCIOPS_DATA": str(tmp_path / "data"),
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    _bring(tmp_path, name)
    for line in section(name):
        r = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=1800)
        assert r.returncode == 0, f"`{line}` exited {r.returncode}: {r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, line
