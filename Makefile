# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: postgres venv test test-all lint demo bench browser clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed" or 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

# Headless Chromium for the browser tests; they skip (saying why) if it cannot be had.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed; browser tests will be skipped"; \
	  else echo "chromium not found and cannot be installed here; browser tests will be skipped"; fi; }

# Debian's PostgreSQL server binaries for the PostgreSQL tests (the tests start their own
# server with initdb/pg_ctl); they skip (saying why) if it cannot be had.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's postgresql for the PostgreSQL tests..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	      || echo "postgresql could not be installed; the PostgreSQL tests will be skipped"; \
	  else echo "postgresql not found and cannot be installed here; the PostgreSQL tests will be skipped"; fi; }

test: venv browser postgres
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

test-all: venv browser postgres
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Style and types: ruff (lint + format check) and mypy (configured in pyproject.toml).
lint: venv
	$(BIN)/ruff check catalog compat migration tests scripts docs
	$(BIN)/ruff format --check catalog compat migration tests scripts docs
	$(BIN)/mypy

demo: venv
	$(BIN)/python scripts/demo.py

bench: venv
	$(BIN)/python tests/perf/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .demo build *.egg-info
