# The two set-up commands of the README (`make run`, `make test`) and their helpers.
# Everything installs into .venv from the project's own files, so a fresh clone is enough.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run stop status test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

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
