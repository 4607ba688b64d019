# One entry point for humans and CI. Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CODEBOT := $(VENV)/bin/codebot
STAMP := $(VENV)/.installed
CODES_DB ?= $(abspath data/build/codes.sqlite)

.PHONY: run test lint typecheck check bench build-data clean postgres-server

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CODES_DB): $(STAMP) $(wildcard bot/codes/*.py bot/codes/sources/*.py data/synonyms.tsv)
	$(CODEBOT) data build --output $(CODES_DB)

build-data: $(STAMP)
	$(CODEBOT) data build --output $(CODES_DB)

run: $(STAMP) $(CODES_DB)
	$(CODEBOT) run

# The state tests run against a real PostgreSQL server they start themselves
# (tests/postgres_server.py); install Debian's `postgresql` when no server binaries exist.
postgres-server:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing PostgreSQL (Debian package postgresql) for the state tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL is needed by the tests: apt-get install postgresql (as root)"; exit 1; fi

test: $(STAMP) $(CODES_DB) postgres-server
	CODEBOT_CODES_DB=$(CODES_DB) $(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check bot adapters tests benchmarks
	$(VENV)/bin/ruff format --check bot adapters tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

bench: $(STAMP) $(CODES_DB) postgres-server
	CODEBOT_CODES_DB=$(CODES_DB) $(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) data/build .pytest_cache .mypy_cache .ruff_cache
