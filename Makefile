# Two entry points on a fresh machine (Python 3.11+): `make demo` and `make test`.
# Each creates .venv and installs the project from the package registry on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/target-pendo-demo

lint: $(BIN)/.installed
	$(BIN)/ruff check target_pendo tests

test: lint
	$(BIN)/python -m pytest
