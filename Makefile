# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

GPIO := .venv-gpio
GPIO_STAMP := $(GPIO)/.installed

LINT := build/lint

.PHONY: setup gpio demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

setup: $(STAMP)

# geoparquet-io (`gpio check`), which the lake tests run on the files they write, in a venv of
# its own: its dependencies stay out of the project's. 1.6.0 is its last release on DuckDB 1.5.5,
# whose spatial extension the duckdb-extension-spatial package carries (later ones want 1.5.6,
# with no such package: they would download it). gpio loads `spatial` from DuckDB's extension
# folder under HOME, so the extension is copied into $(GPIO)/home and gpio run with that HOME.
$(GPIO_STAMP): Makefile
	$(PYTHON) -m venv $(GPIO)
	$(GPIO)/bin/pip install --quiet geoparquet-io==1.6.0 duckdb==1.5.5 duckdb-extension-spatial==1.5.5
	$(GPIO)/bin/python -c "import duckdb, shutil, pathlib, duckdb_extension_spatial as e; \
	v = 'v' + duckdb.__version__; platform = duckdb.execute('PRAGMA platform').fetchone()[0]; \
	to = pathlib.Path('$(GPIO)/home/.duckdb/extensions') / v / platform; to.mkdir(parents=True, exist_ok=True); \
	shutil.copy(pathlib.Path(e.__file__).parent / 'extensions' / v / 'spatial.duckdb_extension', to)"
	touch $@

gpio: $(GPIO_STAMP)

demo: $(STAMP)
	$(BIN)/citypipe run

test: $(STAMP) lint
	-$(MAKE) --no-print-directory gpio  # without it, the gpio checks are skipped and say why
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -n 2  # two workers: the 2-core machines the suite runs on

# The layers (import-linter) and types (mypy) checked on the package as installed: the folders
# are mapped onto one import package, which both tools can only see once it is laid out.
lint: $(STAMP)
	rm -rf $(LINT)
	$(BIN)/pip install --quiet --no-deps --target $(LINT) .
	PYTHONPATH=$(LINT) $(BIN)/lint-imports --no-cache
	MYPYPATH=$(LINT) $(BIN)/mypy -p citypipe

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf data/lake bench/work $(GPIO)
