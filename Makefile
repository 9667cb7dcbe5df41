# tracehound: set-up, watchdog, tests, benchmarks.
#   make setup   host packages + headers (as root), then .venv/ with tracehound and bcc
#   make watch   run the watchdog with the built-in rules (ARGS="--duration 30s" etc.)
#   make test    ruff, mypy and the whole test suite
#   make bench   run every bench/*.py (not _helpers) and print its figures
# Stamp files in .venv/ make a second `make setup` take well under a second.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# The machine's python3 (3.11+); /usr/bin/python3 when the one on PATH is older.
ifndef PYTHON
PYTHON := $(shell for p in python3 /usr/bin/python3; do \
	  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	  && { command -v $$p; break; }; done)
endif
BCC_DIR := /usr/lib/python3/dist-packages/bcc
STAMP_VENV := $(VENV)/.stamp-venv
STAMP_BCC := $(VENV)/.stamp-bcc
ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: help setup host watch test lint typecheck pytest bench

help:
	@echo "make setup | watch | test | bench   (see README.md)"

# Host set-up runs every time: it is idempotent, fast when done, and remounts tracefs
# after a reboot.
host:
	@bash probes/host-setup.sh

setup: host $(STAMP_VENV) $(STAMP_BCC)

$(STAMP_VENV): pyproject.toml | host
	@if [ -z "$(PYTHON)" ]; then echo "setup: need python3 >= 3.11 (apt-get install python3 python3-venv)" >&2; exit 1; fi
	@if ! $(PY) -c 'import sys' >/dev/null 2>&1; then \
		echo "setup: creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# bcc comes from the distribution: expose only its package to the venv (a directory
# holding one symlink, added by a .pth), never the rest of Debian's dist-packages.
$(STAMP_BCC): $(STAMP_VENV)
	@if [ -d "$(BCC_DIR)" ]; then \
		mkdir -p $(VENV)/bcc-only; \
		ln -sfn $(BCC_DIR) $(VENV)/bcc-only/bcc; \
		site=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
		echo "$(CURDIR)/$(VENV)/bcc-only" > "$$site/tracehound-bcc.pth"; \
		$(PY) -c 'import bcc; print("setup: bcc importable from", bcc.__file__)'; \
		touch $@; \
	else \
		echo "setup: $(BCC_DIR) missing (python3-bpfcc not installed; run as root): BPF probes unavailable"; \
	fi

watch: setup
	$(VENV)/bin/tracehound watch $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest -q $(ARGS)

# All three always run (one CI log shows every problem); any failure fails the target.
test: setup
	@failed=(); \
	echo "== ruff"; $(VENV)/bin/ruff check . || failed+=(ruff); \
	$(VENV)/bin/ruff format --check . || failed+=(ruff-format); \
	echo "== mypy"; $(VENV)/bin/mypy || failed+=(mypy); \
	echo "== pytest"; $(VENV)/bin/pytest -q $(ARGS) || failed+=(pytest); \
	if [ $${#failed[@]} -gt 0 ]; then echo "make test: FAILED: $${failed[*]}"; exit 1; fi; \
	echo "make test: ruff, mypy and pytest passed"

bench: setup
	@shopt -s nullglob; files=(bench/[!_]*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "bench: no benchmarks yet"; fi; \
	for f in "$${files[@]}"; do echo "== $$f"; $(PY) "$$f"; done
