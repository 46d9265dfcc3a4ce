# mcp-analytics: every target a newcomer needs; `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SOURCE ?= data/demo.db
CALLS  ?= 5000
SEED   ?= 1
SIZES  ?= 100k,1m,5m
RESULTS ?= bench/RESULTS.md
REPEAT  ?= 3

.PHONY: help install dev etl demo lint test test-all clean bench

help: ## List every target with its one-line description
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.dev-installed: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed ## Create .venv with the runtime dependencies only

dev: $(BIN)/.dev-installed ## Create .venv with the runtime and the dev tools (ruff, mypy, pytest)

$(SOURCE): | $(BIN)/.installed
	$(BIN)/mcp-analytics demo --out $(SOURCE) --calls $(CALLS) --seed $(SEED) --truth $(SOURCE).truth.json

demo: $(SOURCE) ## Make the demo producer database (data/demo.db) if it is missing

etl: $(BIN)/.installed $(SOURCE) ## Run the ETL on SOURCE (default: the demo database) and print a summary
	$(BIN)/mcp-analytics etl $(SOURCE)

lint: $(BIN)/.dev-installed ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/ruff format --check pipeline tests bench
	$(BIN)/mypy pipeline bench

test: lint ## Lint, type-check, then run the test suite (slow tests included)
	$(BIN)/pytest -q

test-fast: lint ## Lint, type-check, then the tests not marked slow
	$(BIN)/pytest -q -m "not slow"

bench: $(BIN)/.installed ## Benchmark the ETL against a pure-SQLite script (SIZES=100k,1m,5m REPEAT=3 RESULTS=bench/RESULTS.md)
	$(BIN)/python -m bench --sizes "$(SIZES)" --repeat "$(REPEAT)" --results "$(RESULTS)"

clean: ## Remove the virtual environment and caches (keeps data/)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
