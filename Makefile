# Baton: run / test / bench / lint / build. Every target creates and uses .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The newest Python 3.11+ on this machine, preferring 3.12 (Lambda's runtime here).
PYTHON ?= $(shell scripts/find-python)
# shared/ is the Lambda layer: no bytecode caches may appear in it (sam build ships it).
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help run test bench lint build clean

help:
	@echo "make run    serve Baton on http://127.0.0.1:$${PORT:-3000} (embedded Redis and store)"
	@echo "make test   run the whole test suite"
	@echo "make bench  run the benchmarks and print their results"
	@echo "make lint   ruff, mypy, cfn-lint and sam validate --lint"
	@echo "make build  sam build (no Docker)"

$(STAMP): pyproject.toml shared/requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (3.12 preferred)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

$(VENV)/.deploy: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,deploy]'
	@touch $@

run: $(STAMP)
	$(VENV)/bin/baton serve

test: $(VENV)/.deploy
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/run.py

lint: $(VENV)/.deploy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	PATH="$(dir $(PYTHON)):$$PATH" $(VENV)/bin/sam validate --lint

build: $(VENV)/.deploy
	PATH="$(dir $(PYTHON)):$$PATH" $(VENV)/bin/sam build

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
