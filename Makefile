# The README's two commands: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first, pinned, so that nothing later resolves torch from the registry (whose default
# Linux build drags in gigabytes of CUDA libraries). On the project machines torch==2.13.0 is a local
# CPU wheel. To keep a torch you already have, install into that environment with `pip install -e ".[dev]"`.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-slow lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/lungcad demo --out outputs/demo

test: install
	$(BIN)/python -m ruff check lungcad_transforms scripts tests
	$(BIN)/python -m ruff format --check lungcad_transforms scripts tests
	$(BIN)/python -m pytest -q -m "not slow" tests

# the tests marked slow: whole trainings, two-process runs, exported bundles in a clean venv, Chromium
test-slow: install
	$(BIN)/python -m pytest -q -m slow tests

bench: install
	$(BIN)/python scripts/bench_lungmask.py
	$(BIN)/python scripts/bench_segmentation.py
	$(BIN)/python scripts/bench_fp_reduction.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
