# The front door for people and CI alike. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=
STATEMENTS_BENCH_ARGS ?=
SEED_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install install-dev run test test-pg test-ha lint fmt bench docs clean

help:
	@echo "make run       install if needed, migrate (and seed an empty) SQLite database, serve on http://$(HOST):$(PORT)"
	@echo "make test      install dev dependencies if needed, run every test"
	@echo "make test-pg   the suite against PostgreSQL (TEST_DATABASE_URL, default local postgres)"
	@echo "make test-ha   restart and failover under load on private PostgreSQL 15 clusters (tests/ha)"
	@echo "make lint      ruff check, ruff format --check, mypy"
	@echo "make fmt       format and autofix with ruff"
	@echo "make bench     run the benchmarks, results under bench/results/"
	@echo "make docs      regenerate docs/API.md from the OpenAPI schema"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/banking migrate
	$(BIN)/banking seed --if-empty $(SEED_ARGS)
	@echo "web UI and API on http://$(HOST):$(PORT)/ - log in with a seeded member, support or admin"
	@echo "(credentials are printed once, when the database is first seeded; 'make clean' starts over)"
	$(BIN)/banking serve --host $(HOST) --port $(PORT)

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-pg: install-dev
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

test-ha: install-dev
	HA_TESTS=1 $(BIN)/python -m pytest tests/ha -p no:cacheprovider -s $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: install-dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install-dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.statements $(STATEMENTS_BENCH_ARGS)

docs: install
	$(BIN)/python -m banking.apidocs docs/API.md

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
