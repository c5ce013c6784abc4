# RevOps AI Framework — every target installs what it needs on a fresh machine.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA := deploy/kafka/kafka.sh
export PYTHONUNBUFFERED := 1

.PHONY: setup tools kafka-up kafka-down kafka-status run demo test lint typecheck unit \
        schemas bench profile chaos chaos-replicas fuzz clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==25.3
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

## setup: virtualenv with the project and its dev tools, plus the Kafka broker jars
setup: $(STAMP)
	@$(KAFKA) fetch

## tools: command-line tools the manifest and alert tests need (kustomize, promtool)
tools:
	@bash deploy/tools/install-tools.sh

kafka-up: setup
	@$(KAFKA) up

kafka-down:
	@$(KAFKA) down

kafka-status:
	@$(KAFKA) status

## run: local broker (unless REVOPS_KAFKA_BOOTSTRAP_SERVERS is set), demo warehouse, all
## services, demo triggers; prints flow results as they arrive. Ctrl-C stops everything.
run: setup
	@if [ -z "$$REVOPS_KAFKA_BOOTSTRAP_SERVERS" ]; then $(KAFKA) up; fi
	$(BIN)/revops run

## demo: the same, one shot: exits after printing a summary
demo: setup
	@if [ -z "$$REVOPS_KAFKA_BOOTSTRAP_SERVERS" ]; then $(KAFKA) up; fi
	$(BIN)/revops demo

## lint: style, formatting and the import contracts of .importlinter (service boundaries, no cycles)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --cache-dir .cache/import-linter

typecheck: $(STAMP)
	$(BIN)/mypy .

## test: lint, types, then every test (unit, integration on a real broker, end-to-end)
test: setup tools lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

schemas: $(STAMP)
	$(BIN)/python -m contracts.export

## bench: throughput, latency and resource figures; writes bench/results.json
bench: setup
	$(BIN)/python -m bench.run_all

## profile: the pipeline part of the bench with py-spy on every service (top frames per process)
profile: setup
	$(BIN)/python -m bench.run_all --profile --skip-areas

## fuzz: property and parser tests with fresh random examples (not derandomized, many more)
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q -p no:cacheprovider -m "not kafka" \
	  tests/unit tests/security/test_fuzz_parsers.py

# Fault runs: `make chaos` on the embedded SQLite store, one process per service;
# `make chaos-replicas` with CHAOS_REPLICAS processes of every service sharing PostgreSQL
# (REVOPS_DATABASE_URL, else a throwaway local server). CHAOS_TRIGGERS and
# CHAOS_REPLICA_TRIGGERS set the runs' sizes.
CHAOS_TRIGGERS ?= 10000
CHAOS_REPLICA_TRIGGERS ?= 3000
CHAOS_REPLICAS ?= 3
chaos: setup
	$(BIN)/python -m bench.chaos --triggers $(CHAOS_TRIGGERS)

chaos-replicas: setup
	$(BIN)/python -m bench.chaos --triggers $(CHAOS_REPLICA_TRIGGERS) --replicas $(CHAOS_REPLICAS)

clean:
	-$(KAFKA) down
	rm -rf var .cache/kafka-jars .pytest_cache .mypy_cache .ruff_cache
