# SafetyHeatmap. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Other makefiles (mk/*.mk) add their checks here.
TEST_TARGETS :=
LINT_TARGETS :=

-include mk/*.mk

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv tools run test checks lint unit integration e2e docs lock clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies

tools: ## system packages the tests need: Debian's chromium for the browser tests
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@command -v node >/dev/null || { echo "Node.js 20+ is needed for the frontend checks" >&2; exit 1; }

bench-tools: ## what the load benchmarks need besides the venv: Debian's wrk
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk >/dev/null; }

run: venv ## start emulator, tables and queues, web and one worker; prints the URL
	$(BIN)/python -m shared.dev.devstack

lint: venv $(LINT_TARGETS) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check web workers shared tests bench
	$(BIN)/mypy

unit: venv ## unit tests only (fast)
	$(BIN)/python -m pytest -q tests/unit

integration: venv ## integration tests over real processes
	$(BIN)/python -m pytest -q tests/integration

e2e: venv tools ## browser tests (Playwright driving Debian's chromium) over the real stack
	$(BIN)/python -m pytest -q tests/e2e

# The checks besides pytest are independent (own venvs, own files): they run side by side, each
# target's output kept together, which halves the setup of a fresh clone (its pip installs wait
# on the network more than on the two cores). pytest then runs alone: its stacks need the CPU.
CHECK_JOBS ?= 3

checks: lint tools $(TEST_TARGETS) ## lint and every check besides pytest (frontend, infra, audit)

# pytest then spreads its modules over TEST_JOBS processes (pytest-xdist): most of a module's
# time is its stack starting up and polling with deadlines, which leaves the other core idle.
# By module (--dist loadfile), so each module's stack is built once: 5 min 23 s -> 3 min 14 s.
TEST_JOBS ?= 2

test: ## lint, the other checks, then every pytest suite
	$(MAKE) --no-print-directory -j$(CHECK_JOBS) --output-sync=target checks
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

docs: venv ## regenerate the README's settings table from shared/config/settings.py
	$(BIN)/python -m shared.ops.docs

lock: ## re-resolve constraints.txt from requirements-dev.txt in a fresh venv
	rm -rf /tmp/safetyheatmap-lock && $(PYTHON) -m venv /tmp/safetyheatmap-lock
	/tmp/safetyheatmap-lock/bin/pip install -q -r requirements-dev.txt
	(echo "# Generated: pip freeze of a fresh venv with requirements-dev.txt (make lock). Python 3.11."; \
	  /tmp/safetyheatmap-lock/bin/pip freeze) > constraints.txt

clean: ## remove the venv, tool venvs and caches
	rm -rf $(VENV) .tools .run .pytest_cache .mypy_cache .ruff_cache
