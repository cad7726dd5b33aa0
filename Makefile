# The commands a newcomer can guess: make run, make test, make lint, make bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

# Installs only when pyproject.toml changed since the last install, so a second `make run` starts at once.
$(VENV)/.installed-run: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-run
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/apot run

test: $(VENV)/.installed-dev
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy apot webapp tasks ml tests bench

# Figures for the closing notes, as one table; Postgres/Redis parts run when APOT_TEST_DATABASE_URL /
# APOT_TEST_BROKER_URL are set. `make bench PARTS="single"` runs one part (single, csv, history, metrics, charts, start).
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench $(PARTS)

clean:
	rm -rf $(VENV) var
