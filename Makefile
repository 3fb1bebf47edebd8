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

PORT ?= 8080
HOST ?= 127.0.0.1

# Without AESH_BOT_TOKEN (environment or .env): the local sandbox on http://$(HOST):$(PORT)
# (database, demo department, real bot on the project's Bot API server, mail agent, web page);
# with it: production (aesh run).
run: $(STAMP)
	@if $(BIN)/python -c 'import sys; from core.config import Settings; sys.exit(0 if Settings().bot_token else 1)'; then \
		exec $(BIN)/aesh run; \
	else \
		exec $(BIN)/aesh sandbox --port $(PORT) --host $(HOST); \
	fi

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy core
	$(BIN)/python -m pytest -q

# Each benchmark prints its figures and the ratio to its issue's targets; run them all even
# when one misses (the exit status then says so).
bench: $(STAMP)
	status=0; for b in benchmarks/bench_reports.py benchmarks/bench_mail.py benchmarks/bench_bot.py \
	  $(wildcard benchmarks/bench_service.py); do \
	  echo "== $$b"; $(BIN)/python $$b || status=1; done; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache
