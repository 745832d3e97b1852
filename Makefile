# imagescope — developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint fixtures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## Install into .venv and inspect the bundled example image (no Docker engine needed).
demo: $(STAMP)
	$(BIN)/imagescope inspect fixtures/example-image.tar

## Install into .venv and run the whole test suite (engine tests skip when no engine answers).
test: $(STAMP)
	$(BIN)/python -m pytest

## The suite without the Docker-engine tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not engine"

## Lint and type-check (installs ruff and mypy into .venv).
lint: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,dev]'
	$(BIN)/ruff check imagescope tests fixtures
	$(BIN)/mypy imagescope

## Regenerate the bundled example image deterministically.
fixtures: $(STAMP)
	$(BIN)/python -m fixtures.generate fixtures

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
