# boxoffice: the two set-up commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv pip install --quiet --python $(BIN)/python

.PHONY: run test system-deps lint lock bench-bus flash-sale clean

run: $(VENV)/.runtime
	$(BIN)/boxoffice run

test: system-deps $(VENV)/.dev $(VENV)/.checkov
	$(BIN)/ruff check src tests loadtest deploy
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile

# Debian servers the integration tests start on loopback (PostgreSQL); nothing when already installed.
system-deps:
	bash scripts/install-system-deps.sh

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/uv
	$(UV) -r requirements.lock
	$(UV) --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock pyproject.toml | $(BIN)/uv
	$(UV) -r requirements-dev.lock
	$(UV) --no-deps -e .
	touch $@ $(VENV)/.runtime

# checkov (the policy scan of deploy/, tests/deploy) in a venv of its own: its pins clash with ours.
$(VENV)/.checkov: requirements-checkov.lock | $(BIN)/uv
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python $(VENV)/checkov
	$(BIN)/uv pip install --quiet --python $(VENV)/checkov/bin/python -r requirements-checkov.lock
	touch $@

# Re-pin every dependency after editing pyproject.toml (or requirements-checkov.in).
lock: | $(BIN)/uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements-dev.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements-checkov.in -o requirements-checkov.lock

bench-bus: $(VENV)/.dev
	$(BIN)/python loadtest/bus_throughput.py --backend sql
	$(BIN)/python loadtest/bus_throughput.py --backend kafka

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
