# The front door for people and CI alike. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# pytest-xdist workers: one per core by default. Each has its own databases and server
# ports. --dist loadscope keeps a module's test functions on one worker, and a class's
# tests, so a module-scoped server starts once on each worker that runs some of them.
# The schema fuzzing has a class per resource so that its operations spread across the
# workers (tests/reliability/schema_fuzzing.py).
TEST_WORKERS ?= auto
XDIST = -n $(TEST_WORKERS) --dist loadscope
TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
TEST_REDIS ?= redis://127.0.0.1:6379/15
BENCH_ARGS ?=
STATEMENTS_BENCH_ARGS ?=
SEED_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install install-dev run test test-fast test-pg test-long test-ha lint fmt bench docs clean

help:
	@echo "make run       install if needed, migrate (and seed an empty) SQLite database, serve on http://$(HOST):$(PORT)"
	@echo "make test      install dev dependencies if needed, run every test (in parallel, TEST_WORKERS=auto)"
	@echo "make test-fast unit + integration tests on SQLite, no servers or browser: the inner loop"
	@echo "make test-pg   the suite against PostgreSQL + Redis (TEST_DATABASE_URL, TEST_REDIS_URL; local defaults)"
	@echo "make test-long the money model test with its long profile (minutes; PostgreSQL too when TEST_DATABASE_URL is set)"
	@echo "make test-ha   restart, failover and read replica on private PostgreSQL 15 clusters (tests/ha; TEST_REDIS_URL for the two-process replica test)"
	@echo "make lint      ruff check, ruff format --check, mypy, lint-imports (the layers)"
	@echo "make fmt       format and autofix with ruff"
	@echo "make bench     run the benchmarks, results under bench/results/"
	@echo "make docs      regenerate docs/API.md from the OpenAPI schema"
	@echo "make clean     remove .venv, var/ (the dev database and secrets) and tool caches"

$(BIN)/python:
	@echo "==> creating $(VENV) (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip shows what it downloads and installs: the first install takes about half a minute.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "==> installing the service and its dependencies into $(VENV)"
	$(BIN)/python -m pip install --progress-bar on -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "==> installing the service and its development tools into $(VENV)"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/banking migrate
	$(BIN)/banking seed --if-empty $(SEED_ARGS)
	@echo "web UI and API on http://$(HOST):$(PORT)/ - log in with a seeded member, support or admin"
	@echo "(the logins again: $(BIN)/banking seed --show-logins; 'make clean' starts over)"
	$(BIN)/banking serve --host $(HOST) --port $(PORT)

test: install-dev
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The inner loop: unit and integration tests on SQLite, in-process only (no server
# processes, no browser, no PostgreSQL or Redis even when TEST_* variables are set).
test-fast: install-dev
	env -u TEST_DATABASE_URL -u TEST_REDIS_URL \
		$(BIN)/python -m pytest $(XDIST) -m "not slow and not browser" tests/unit tests/integration $(PYTEST_ARGS)

test-pg: install-dev
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(TEST_PG_URL)} TEST_REDIS_URL=$${TEST_REDIS_URL:-$(TEST_REDIS)} \
		$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The model-based test of the money path, many more and longer runs than in `make test`.
test-long: install-dev
	TEST_DATABASE_URL= BANKING_MODEL_PROFILE=long $(BIN)/python -m pytest -p no:timeout \
		tests/integration/test_money_model.py $(PYTEST_ARGS)
	if [ -n "$${TEST_DATABASE_URL:-}" ]; then \
		BANKING_MODEL_PROFILE=long $(BIN)/python -m pytest -p no:timeout \
			tests/integration/test_money_model.py $(PYTEST_ARGS); fi

test-ha: install-dev
	HA_TESTS=1 $(BIN)/python -m pytest tests/ha -p no:cacheprovider -s $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/mypy tools
	$(BIN)/lint-imports

fmt: install-dev
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

bench: install-dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.statements $(STATEMENTS_BENCH_ARGS)
	$(BIN)/python -m bench.history_depth $(HISTORY_BENCH_ARGS)

docs: install
	$(BIN)/python -m tools.apidocs docs/API.md

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
