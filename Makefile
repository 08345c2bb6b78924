# Two commands on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned to the local CPU build, so that no CUDA wheels are pulled.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-e2e app chromium install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install "torch==2.13.0"
	$(BIN)/pip install -e ".[test,app,materials,crystals,scale]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/matfuse demo --out matfuse-demo

# `pytest tests` includes the browser tests in tests/app (test-e2e runs only those)
test: install chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest tests

test-e2e: install chromium
	$(BIN)/python -m pytest tests/app

# Debian's Chromium for the Playwright tests; if it cannot be installed they skip, saying why
chromium:
	@test -x /usr/bin/chromium || command -v chromium >/dev/null 2>&1 || \
	  ( (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
	    || echo "chromium could not be installed: the browser tests in tests/app will skip" )

# the web UI on 127.0.0.1:7860; e.g. `make app APP_ARGS="--port 7870"`
APP_ARGS ?=
app: install
	$(BIN)/matfuse app $(APP_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m mypy

bench: install
	$(BIN)/pip install -e ".[bench]"
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/moleculenet.py

clean:
	rm -rf $(VENV) matfuse-demo
