# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/citypipe run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2  # two workers: the 2-core machines the suite runs on

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf data/lake bench/work
