# omvald: the verbs a newcomer needs. `make help` lists them.
# Everything runs inside .venv, created and filled from constraints.txt on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# DVC cannot read unquoted dates in params.yaml; omvald/dvc_dates.py teaches it (a .pth hook in the venv).
DATES  := $(VENV)/.dvc-dates-stamp
EXTRAS ?= test,spark
# dvc runs each stage's `omvald ...` command through the shell: the venv comes first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help install repro test test-fast lint format bench mlflow-ui clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

$(DATES): $(STAMP) src/omvald/dvc_dates.py
	$(BIN)/python -m omvald.dvc_dates install
	@touch $(DATES)

install: $(STAMP) $(DATES) ## Create .venv and install pinned dependencies

repro: $(STAMP) $(DATES) ## Run the whole DVC pipeline (synthetic business by default; see params.yaml data.source)
	$(BIN)/dvc repro

test: $(STAMP) $(DATES) ## Run the whole test suite (includes training on the default synthetic business)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: $(STAMP) $(DATES) ## Unit, data and property tests: under a minute, never runs the pipeline
	$(BIN)/python -m pytest -n 2 tests/unit tests/data tests/property -m "not slow and not pipeline and not spark" --hypothesis-profile=fast

lint: $(STAMP) ## ruff format --check, ruff check and the architecture contracts (import-linter, pyproject.toml)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

format: $(STAMP) ## Format and autofix with ruff
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP) ## Print generation, feature and scoring timings (20k customers; see benchmarks/README.md for 1M)
	$(BIN)/python benchmarks/bench_generate.py --sizes 20000
	$(BIN)/python benchmarks/bench_features.py --sizes 20000
	$(BIN)/python benchmarks/bench_score.py --customers 20000

mlflow-ui: $(STAMP) ## Open the MLflow UI on the local tracking store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db

clean: ## Remove the virtual environment and caches (not data or DVC cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .grimp_cache .import_linter_cache
