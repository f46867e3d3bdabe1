"""The README's Tour, read from the README itself, so README and code cannot drift apart.

Fast: every Tour command parses with the CLI's own parser, names recipes and PDEs that
exist, and reads only what an earlier Tour command wrote (the commands chain). Slow: the
commands run verbatim, in order, in an empty folder; each must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from sciops import cli, pdes
from sciops.data import known_recipes

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def tour() -> list[str]:
    """The command lines of the README's Tour block (comments and ``. .venv/...`` dropped)."""
    text = README.read_text()
    block = re.search(r"^## Tour\n+```sh\n(.*?)^```", text, re.S | re.M)
    assert block, "README has no ## Tour section with a sh block"
    lines = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] != ".":
            lines.append(line)
    return lines


def _argv(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    assert words[0] == "sciops", line
    return words[1:]


def test_tour_commands_parse_and_name_what_exists():
    parser = cli.build_parser()
    datasets, solvers = known_recipes("datasets"), known_recipes("solvers")
    commands = tour()
    assert len(commands) >= 8
    for line in commands:
        args = parser.parse_args(_argv(line))
        if args.command == "generate":
            assert args.recipe in datasets, line
        if args.command == "train" and args.recipe:
            assert args.recipe in solvers, line
        if args.command in ("solve", "verify"):
            assert args.pde in pdes.available(), line


def test_tour_commands_chain():
    """Each path a command reads was written by an earlier command (``--out``)."""
    parser = cli.build_parser()
    written: list[str] = []
    for line in tour():
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
                f"`{line}` reads {path}, which no earlier Tour command wrote")
        if getattr(args, "out", None):
            written.append(args.out)


@pytest.mark.slow
def test_tour_runs_verbatim(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCIOPS_DATA": str(tmp_path / "data"),
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for line in tour():
        r = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=1800)
        assert r.returncode == 0, f"`{line}` exited {r.returncode}: {r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, line
