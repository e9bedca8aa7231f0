# Two entry points on a fresh machine (Python 3.11+): `make demo` and `make test`.
# Each creates .venv and installs the project from the package registry on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint e2e bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/target-pendo-demo

lint: $(BIN)/.installed
	$(BIN)/ruff check target_pendo pendo_emulator tests e2e bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n 2

# The real pipeline, set up as README says: a fresh Meltano project in a temporary directory,
# README's Meltano commands run as written, PostgreSQL -> tap-postgres -> target-pendo -> the
# emulator. Meltano gets its own venv; it installs the tap (PyPI) and the loader (this clone)
# into venvs of their own.
.venv-meltano/bin/meltano:
	$(PYTHON) -m venv .venv-meltano
	.venv-meltano/bin/python -m pip install --quiet --disable-pip-version-check 'meltano>=4,<5'

e2e: $(BIN)/.installed .venv-meltano/bin/meltano
	$(BIN)/python e2e/run.py --meltano .venv-meltano/bin/meltano

# The benchmark (timings are printed, never asserted): N = 10k and 100k; BENCH_ARGS=--million
bench: $(BIN)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)
