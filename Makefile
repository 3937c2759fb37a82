# The two set-up commands of the README (`make run`, `make test`) and their helpers.
# Everything installs into .venv from the project's own files, so a fresh clone is enough.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run stop status test lint typecheck pytest bench clean lock

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
run: $(STAMP)
	@mkdir -p var/run var/log
	@if [ -S var/run/supervisor.sock ] && $(BIN)/supervisorctl -c supervisord.conf pid >/dev/null 2>&1; then \
		echo "supervisord is already running"; \
	else \
		$(BIN)/supervisord -c supervisord.conf; \
	fi
	@echo "Started. See the programs with:  $(BIN)/supervisorctl status"
	@echo "Health on one screen:            $(BIN)/bridge-status"
	@echo "Stop everything:                 make stop"

## stop: stop every program and supervisord itself
stop: $(STAMP)
	@$(BIN)/supervisorctl -c supervisord.conf shutdown || true

status: $(STAMP)
	@$(BIN)/supervisorctl -c supervisord.conf status

## test: install, then lint, format check, type check and the whole pytest suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## bench: run every benchmark under bench/ and rewrite docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
