# Rotary: `make run` starts a development server, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JS_DIR := tests/sdk/js

.PHONY: install run test lint typecheck unit js-deps redis bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

run: install
	$(VENV)/bin/rotary dev --config config.dev.json

js-deps: $(JS_DIR)/node_modules/.installed

$(JS_DIR)/node_modules/.installed: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

redis:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
		redis-server --daemonize yes --port 6379 --save "" --appendonly no

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest -q

test: install js-deps redis lint typecheck
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

bench: install
	$(PY) -m bench all --quick

clean:
	rm -rf $(VENV) $(JS_DIR)/node_modules .mypy_cache .pytest_cache .ruff_cache
