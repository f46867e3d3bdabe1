# The README's commands. Everything runs inside .venv, created on first use.
# torch is pinned first so pip takes the CPU build on disk instead of resolving a CUDA one.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sciops-installed
TORCH := torch==2.13.0

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sciops demo --out demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# neuraloperator's small Darcy files ship in its 0.3.0 wheel (PyPI): the peer benchmark's data.
DARCY := third_party/neuralop-darcy
$(DARCY):
	$(BIN)/python -m pip download -q --disable-pip-version-check --no-deps \
		neuraloperator==0.3.0 -d third_party/wheels
	$(BIN)/python -c "import zipfile, pathlib; z = zipfile.ZipFile(next(pathlib.Path(\
	'third_party/wheels').glob('neuraloperator-0.3.0-*.whl'))); out = pathlib.Path('$(DARCY)'); \
	out.mkdir(parents=True, exist_ok=True); [out.joinpath(pathlib.Path(n).name).write_bytes(\
	z.read(n)) for n in z.namelist() if '/darcy_' in n and n.endswith('.pt')]"

bench: $(STAMP) $(DARCY)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python -m pytest -q -m slow
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check sciops tests benchmarks

clean:
	rm -rf $(VENV) demo data
