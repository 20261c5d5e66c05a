# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

GPIO := .venv-gpio
GPIO_STAMP := $(GPIO)/.installed

PYGEOAPI := .venv-pygeoapi
PYGEOAPI_STAMP := $(PYGEOAPI)/.installed

LINT := build/lint

.PHONY: setup gpio servers mapserver browser screenshots demo ui test lint bench scale-check clean

# the compiled modules (connectors/*.pyx, *.pxi, pipelines/geo/*.pyx, *.pxi) are built by the editable install: a change rebuilds it
$(STAMP): pyproject.toml $(wildcard connectors/*.pyx connectors/*.pxi pipelines/geo/*.pyx pipelines/geo/*.pxi)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(STAMP)

setup: $(STAMP) servers browser

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

# The real OGC servers the tests start on 127.0.0.1 (tests/servers/README.md). pygeoapi in a venv
# of its own, like gpio: its Flask/rasterio stack stays out of the project's. 0.21.0 is its last
# release for Python 3.11 (0.22 and later want 3.12).
$(PYGEOAPI_STAMP): Makefile
	$(PYTHON) -m venv $(PYGEOAPI)
	$(PYGEOAPI)/bin/pip install --quiet pygeoapi==0.21.0
	touch $@

# Debian packages the tests use, installed where missing and we may (root with apt-get);
# elsewhere one line says so and their tests are skipped. $(1): command, $(2): package.
define apt_install
	@command -v $(1) >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $(2) >/dev/null; } \
	    || echo "apt-get could not install $(2): its tests are skipped"; \
	  else echo "$(1) is missing and needs root with apt-get: its tests are skipped"; fi; }
endef

# MapServer 8 (WFS 1.1 / 2.0) from Debian's cgi-mapserver
mapserver:
	$(call apt_install,mapserv,cgi-mapserver)

servers: $(PYGEOAPI_STAMP) mapserver

# Debian's Chromium, for the test that looks at the validation reports offline (tests/browser.py)
browser:
	$(call apt_install,chromium,chromium)

# Screenshots of the sample run's validation reports (docs/screenshots/), taken offline
screenshots: $(STAMP) browser
	$(BIN)/citypipe run
	$(BIN)/python tests/browser.py data/lake/docs/sources/*.html --out docs/screenshots

demo: $(STAMP)
	$(BIN)/citypipe run

# The Dagster UI on the instance `citypipe run` records in (its default, data/dagster)
ui: $(STAMP)
	mkdir -p data/dagster
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/data/dagster} $(BIN)/dagster dev -w workspace.yaml

test: $(STAMP) servers browser lint
	-$(MAKE) --no-print-directory gpio  # without it, the gpio checks are skipped and say why
	$(BIN)/pytest -q -n 2  # two workers: the 2-core machines the suite runs on

# The layers (import-linter) and types (mypy) checked on the package as installed: the folders
# are mapped onto one import package, which both tools can only see once it is laid out.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(LINT)
	$(BIN)/pip install --quiet --no-deps --target $(LINT) .
	PYTHONPATH=$(LINT) $(BIN)/lint-imports --no-cache
	MYPYPATH=$(LINT) $(BIN)/mypy -p citypipe

bench: $(STAMP)
	$(BIN)/python bench/run.py

# The lake read by Apache SedonaDB and by DuckDB, compared (docs/scaling.md); not in `make test`.
# SedonaDB in a venv of its own, like gpio (237 MB that the project does not otherwise need).
SEDONA := .venv-sedona
$(SEDONA)/.installed: Makefile
	$(PYTHON) -m venv $(SEDONA)
	$(SEDONA)/bin/pip install --quiet sedonadb==0.5.0 geoarrow-pyarrow pyarrow
	touch $@

scale-check: $(STAMP) $(SEDONA)/.installed
	$(BIN)/citypipe run
	$(BIN)/python bench/scale_check.py --lake data/lake

clean:
	rm -rf data/lake bench/work $(GPIO) $(PYGEOAPI)
