# Two commands on a fresh machine: `make run` (the main job) and `make test`.
# `make test` starts a throwaway PostgreSQL and uses Debian's Chromium
# (tests/services.sh installs them when missing).
# Each creates and fills its own virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job: the inference server with the default model on SQLite, the reader
# console and the handheld page, fed by the demo scan stream.
run: $(STAMP)
	$(BIN)/customs-vision serve run --demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash tests/services.sh $(BIN)/python -m pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/customs-vision bench synth
	$(BIN)/customs-vision bench convert
	$(BIN)/customs-vision bench detector
	$(BIN)/customs-vision bench risk
	$(BIN)/customs-vision bench server --out runs/bench/server.json

clean:
	rm -rf $(VENV) build *.egg-info
