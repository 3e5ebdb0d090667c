# Rotary: `make run` starts a development server, `make test` runs every check.
#
# Python dependencies are installed from requirements-dev.txt, a lock with exact versions and
# hashes generated from pyproject.toml by `make lock` (uv pip compile). `make test-latest`
# runs the same suite against the newest releases in a throw-away environment.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements-dev.txt
JS_DIR := tests/sdk/js
WEB_DIR := web
UV_VERSION := 0.13.10
TOOLS_VENV := .venv-tools
LATEST_VENV := .venv-latest
PYTEST_ARGS ?= -q -n 2 --dist loadfile
# The browser tests drive Debian's chromium (tools/ensure.sh); Playwright never downloads one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: install run test test-latest lint typecheck unit js-deps web-deps go-sdk go-receivers services \
	centrifugo compat lock bench clean fuzz

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: install web-deps
	$(VENV)/bin/rotary dev --config config.dev.json

js-deps: $(JS_DIR)/node_modules/.installed

$(JS_DIR)/node_modules/.installed: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# centrifuge-js's browser build for the demo page of `rotary dev` (and its browser test).
web-deps: $(WEB_DIR)/node_modules/.installed

$(WEB_DIR)/node_modules/.installed: $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The centrifuge-go test program (tests/sdk/go), built once into ~/.cache/rotary/bin and again
# only when its sources change. Without Go it prints a note (an error under CI=true).
go-sdk: install
	$(PY) -m tests.sdk.go_driver

# The Go latency receivers of `bench latency` (bench/goload), cached the same way.
go-receivers: install
	$(PY) -m bench.goreceivers

# Redis on 127.0.0.1:6379, valgrind and chromium (browser tests): used when present,
# installed from Debian as root. Centrifugo (the differential tests' reference) is built
# when Go is present (see centrifugo).
services:
	tools/ensure.sh redis valgrind chromium centrifugo

# Centrifugo v6.9.1 from its Go module, built once into ~/.cache/rotary/bin (outside the
# repository; ROTARY_CENTRIFUGO_BIN overrides the path). A test and benchmark dependency only.
centrifugo:
	ROTARY_NEED_CENTRIFUGO=1 tools/ensure.sh centrifugo

# Every differential scenario against Centrifugo and Rotary (`make test` runs the quick ones).
compat: install js-deps centrifugo
	ROTARY_COMPAT=full $(VENV)/bin/pytest -q -n 2 -m compat tests/compat

lint: install
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest -q

test: install js-deps web-deps go-sdk go-receivers services lint typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The suite against the newest release of every dependency, in a throw-away environment.
test-latest: js-deps web-deps services
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/pip install --quiet --upgrade -e '.[test,bench,fastapi,django]'
	$(LATEST_VENV)/bin/mypy
	$(LATEST_VENV)/bin/pytest $(PYTEST_ARGS) -p no:cacheprovider

# Regenerates the lock from pyproject.toml (every extra) and tools/build-requirements.in.
lock:
	test -x $(TOOLS_VENV)/bin/uv || { $(PYTHON) -m venv $(TOOLS_VENV) && \
		$(TOOLS_VENV)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(TOOLS_VENV)/bin/uv pip compile pyproject.toml tools/build-requirements.in \
		--all-extras --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-header --quiet -o $(LOCK)

bench: install
	$(PY) -m bench all --quick

clean:
	rm -rf $(VENV) $(TOOLS_VENV) $(LATEST_VENV) $(JS_DIR)/node_modules $(WEB_DIR)/node_modules .mypy_cache .pytest_cache .ruff_cache

# Coverage-guided fuzzing of every parser (atheris; Hypothesis' long profile without it):
# FUZZ_SECONDS per target. What crashes a target is kept in tests/fuzz/corpus/<target>/.
FUZZ_SECONDS ?= 60
fuzz: install
	$(PY) -m tests.fuzz.run --seconds $(FUZZ_SECONDS)
