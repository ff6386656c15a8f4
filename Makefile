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

.PHONY: help venv tools run reset test checks lint unit integration e2e docs lock clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

# Everything from the hashed dev lock (requirements/dev.txt); the project itself editable with the
# lock's setuptools (--no-build-isolation), so nothing unpinned is fetched.
$(STAMP): requirements/dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
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

# The data folder is SAFETYHEATMAP_DATA_DIR's (shared/config/settings.py), .run/data unless set.
DATA_DIR := $(or $(SAFETYHEATMAP_DATA_DIR),.run/data)

reset: ## wipe the tables `make run` keeps across restarts (refused while it runs)
	@pid=$$(sed -n 's/.*"pid": \([0-9]*\).*/\1/p' .run/stack.json 2>/dev/null); \
	  if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; then \
	    echo "make run is running (pid $$pid): stop it first, then make reset" >&2; exit 1; fi
	rm -rf -- "$(DATA_DIR)"
	@echo "wiped $(DATA_DIR)"

lint: venv $(LINT_TARGETS) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check web workers shared tests bench
	$(BIN)/mypy

unit: venv ## unit tests only (fast)
	$(BIN)/python -m pytest -q tests/unit

integration: venv ## integration tests over real processes
	$(BIN)/python -m pytest -q tests/integration

e2e: venv tools frontend-deps ## browser tests (Playwright driving Debian's chromium) over the real stack
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

# requirements/*.in name what each environment imports; `make lock` pins them, with every file's
# hash, for the images' platform (linux x86_64, CPython 3.11). The dev lock is resolved first and
# the others within it, so the images run exactly the versions the tests ran. Pins already in a
# lock are kept while they still fit; LOCK_ARGS=--upgrade moves everything to the newest.
LOCK_VENV := .tools/lock-venv
LOCK_ARGS ?=
LOCK_COMPILE := $(LOCK_VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
  --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock"

$(LOCK_VENV)/.stamp:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.8
	touch $@

lock: $(LOCK_VENV)/.stamp ## re-resolve the hashed locks requirements/*.txt from requirements/*.in
	$(LOCK_COMPILE) $(LOCK_ARGS) -o requirements/dev.txt requirements/dev.in
	for lock in build web worker; do \
	  $(LOCK_COMPILE) -c requirements/dev.txt -o requirements/$$lock.txt requirements/$$lock.in || exit 1; \
	done

clean: ## remove the venv, tool venvs and caches
	rm -rf $(VENV) .tools .run .pytest_cache .mypy_cache .ruff_cache
