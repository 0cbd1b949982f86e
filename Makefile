# lookingglass: `make run` and `make test` set up everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# the index decides the build; for the CPU wheel anywhere:
#   make TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH := torch==2.13.0
WORKSPACE ?= workspace
PYTEST_ARGS ?=
TEST_WORKERS ?= 2     # pytest-xdist processes (whole test files each: a module's fixtures run once)

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: install run test lint bench bench-dask browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

# Headless Chromium for the report tests (Debian's package; needs root and apt-get).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium missing and cannot be installed; browser tests will be skipped"; fi; }

run: $(STAMP)
	$(VENV)/bin/lookingglass run --workspace $(WORKSPACE)

test: $(STAMP) browser lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# ruff, configured in pyproject.toml ([tool.ruff]); not yet part of `test`
lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m benchmarks

# pricing on a LocalCluster: parallel efficiency at N = 300, certified N = 1,000 (long: tens of minutes on 2 cores)
bench-dask: $(STAMP)
	$(PY) -m benchmarks dask

clean:
	rm -rf $(VENV) $(WORKSPACE) .pytest_cache
