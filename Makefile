# The two commands the README starts with: `make run` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine: `run` the package alone (trying
# the demo needs no linters), `test` and `check` the package with its dev extras. Each install has
# its own stamp, so `make test` after `make run` still adds the extras; both redo it when
# pyproject.toml changes (new dependencies, a new version for `gitops-bot --version`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test test-postgres check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(STAMP_RUN)

# The dev install includes the package: it satisfies `run` too.
$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP_DEV) $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/gitops-bot run $(ARGS)

test: $(STAMP_DEV)
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The same suite with every bot the tests start keeping its state in PostgreSQL (the store tests
# run on both engines in `make test` already). Needs Debian's postgresql package (.ci/run installs it).
test-postgres: $(STAMP_DEV)
	GITOPS_BOT_TEST_DATABASE=postgresql $(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

check: $(STAMP_DEV)
	$(BIN)/python scripts/check.py

bench: $(STAMP_RUN)
	$(BIN)/python bench/ack_latency.py
	$(BIN)/python bench/argocd_scale.py
	$(BIN)/python bench/flux_scale.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/notify.py
	$(BIN)/python bench/promotion.py
	$(BIN)/python bench/drift_scan.py
	$(BIN)/python bench/pipelines.py
	$(BIN)/python bench/replicas.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
