# Two commands a new user needs: `make lab` and `make test`. Everything lives in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab test test-fast lint bench install clean

# An editable install: the checkout is on the venv's path, so an edit needs no reinstall.
# hatchling (pyproject.toml) makes it path-based, so Python started in the folder above a clone
# named `hooklab` still imports the package, not the clone's folder as a namespace package.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Jupyter refuses to run as root without --allow-root (containers, CI machines): pass it there only.
lab: $(STAMP)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/01-quickstart.ipynb

test: $(STAMP)
	$(BIN)/python -m pytest

# A quick check of a change: the core, the store and the command line, on SQLite and the CLI's
# local mode, both cores at once (pytest-xdist). `make test` runs all of it and the rest:
# PostgreSQL, the CLI against a server, the server, Prefect, the notebooks and the browser.
FAST_TESTS := tests/core tests/store tests/cli
FAST_SKIP := not postgres and not pg_ and not remote
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 $(FAST_TESTS) -k "$(FAST_SKIP)"

# CI runs this before the tests (.ci/run): style, types (the package and its tests, see
# pyproject.toml), and the import contracts of the layers.
lint: $(STAMP)
	$(BIN)/ruff check hooklab tests benchmarks
	$(BIN)/ruff format --check hooklab tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build dist site
