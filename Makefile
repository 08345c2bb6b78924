# Two commands on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned to the local CPU build, so that no CUDA wheels are pulled.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install "torch==2.13.0"
	$(BIN)/pip install -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/matfuse demo --out matfuse-demo

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest tests

lint: install
	$(BIN)/ruff check src tests benchmarks

bench: install
	$(BIN)/pip install -e ".[bench]"
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/moleculenet.py

clean:
	rm -rf $(VENV) matfuse-demo
