# The two set-up commands of the README (`make run`, `make test`) and their helpers.
# Everything installs into .venv from the project's own files, so a fresh clone is enough.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run stop status test lint typecheck pytest bench bench-quick screenshot clean lock

# Exact versions come from requirements.lock (every package pinned with its hashes, one
# resolution valid for Python 3.11 to 3.13); the project itself is then installed without
# resolving anything again. `make lock` refreshes the lock on purpose after pyproject.toml changes.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

## lock: re-resolve pyproject.toml's dependencies into requirements.lock (review the diff)
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --extra dev --generate-hashes \
		pyproject.toml -o requirements.lock

## run: install, start supervisord on the local profile (embedded PostgreSQL, simulator), return
# supervisord daemonizes: its first process returns before the daemon has written its pid file
# or opened its socket, so `make run` waits for both (bounded by START_TIMEOUT_S), and a
# `make stop` right after finds what it must stop.
START_TIMEOUT_S ?= 60
run: $(STAMP)
	@mkdir -p var/run var/log
	@if [ -S var/run/supervisor.sock ] && $(BIN)/supervisorctl -c supervisord.conf pid >/dev/null 2>&1; then \
		echo "supervisord is already running"; \
	else \
		$(BIN)/supervisord -c supervisord.conf || exit 1; \
		waited=0; \
		until [ -s $(SUPERVISORD_PID) ] && $(BIN)/supervisorctl -c supervisord.conf pid >/dev/null 2>&1; do \
			if [ $$waited -ge $$(( $(START_TIMEOUT_S) * 10 )) ]; then \
				echo "supervisord did not answer within $(START_TIMEOUT_S) s: see var/log/supervisord.log" >&2; \
				exit 1; \
			fi; \
			sleep 0.1; waited=$$((waited + 1)); \
		done; \
	fi
	@echo "Started. See the programs with:  $(BIN)/supervisorctl status"
	@echo "Health on one screen:            $(BIN)/bridge-status"
	@echo "Stop everything:                 make stop"

## stop: stop every program and supervisord itself, and return once all of them have exited
# supervisorctl's shutdown returns as soon as supervisord accepts it, while the programs are still
# stopping (each may take its stopwaitsecs): waiting on supervisord's pid is what makes
# `make stop && make run` safe. Bounded by STOP_TIMEOUT_S (the sum of the stopwaitsecs, rounded up).
STOP_TIMEOUT_S ?= 150
SUPERVISORD_PID := var/run/supervisord.pid
stop: $(STAMP)
	@pid=$$(cat $(SUPERVISORD_PID) 2>/dev/null || true); \
	if [ -z "$$pid" ] || ! ps -o command= -p "$$pid" 2>/dev/null | grep -q supervisord; then \
		echo "supervisord is not running"; exit 0; \
	fi; \
	$(BIN)/supervisorctl -c supervisord.conf shutdown; \
	echo "Waiting for every program and supervisord (pid $$pid) to exit, at most $(STOP_TIMEOUT_S) s"; \
	tenths=0; \
	while kill -0 "$$pid" 2>/dev/null; do \
		if [ "$$tenths" -ge $$(( $(STOP_TIMEOUT_S) * 10 )) ]; then \
			echo "make stop: supervisord (pid $$pid) is still running after $(STOP_TIMEOUT_S) s;" \
				"see var/log/supervisord.log and $(BIN)/supervisorctl status" >&2; \
			exit 1; \
		fi; \
		sleep 0.1; tenths=$$((tenths + 1)); \
	done; \
	echo "Stopped: every program and supervisord have exited."

status: $(STAMP)
	@$(BIN)/supervisorctl -c supervisord.conf status

## test: install, then lint, format check, type check and the whole pytest suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# A short scratch root of its own: the end-to-end stories put supervisord's unix socket under
# it, and a socket path may not exceed 107 bytes (pytest's default root plus a worker's folder
# does).
pytest: $(STAMP)
	@scratch=$$(mktemp -d /tmp/bridge-tests.XXXXXX); \
	$(BIN)/pytest -n 2 --dist worksteal --basetemp=$$scratch $(PYTEST_ARGS); status=$$?; \
	rm -rf $$scratch; exit $$status

## bench: run every benchmark under bench/ and rewrite docs/benchmarks.md (about 45 minutes; the tick jitter alone 14)
bench: $(STAMP)
	$(BIN)/python -m bench

## bench-quick: the headline ratios at small sizes, printed only (under 3 minutes)
bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick --only lean,replay,latency,capacity,web

## screenshot: the README's docs/dashboard.png, taken by the browser test from a running bridge
screenshot: $(STAMP)
	DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png flock /tmp/bridge-e2e.lock \
		$(BIN)/pytest tests/e2e/test_web.py -k dashboard -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
