# aesh-bot — `make run` and `make test` work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DATA   ?= data
DEMO   := $(DATA)/demo

.PHONY: run test bench lint typecheck clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

# Creates the database, loads the demo department when it is empty, prints its coverage.
run: $(STAMP)
	$(BIN)/aesh db upgrade
	$(BIN)/aesh demo-load --if-empty --dir $(DEMO)
	$(BIN)/aesh report coverage

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy core
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_reports.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy core

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache
