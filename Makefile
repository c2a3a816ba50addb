# The two commands the README starts with: `make run` and `make test`.
# Each creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gitops-bot run $(ARGS)

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/python scripts/check.py

bench: $(STAMP)
	$(BIN)/python bench/ack_latency.py
	$(BIN)/python bench/argocd_scale.py
	$(BIN)/python bench/flux_scale.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/promotion.py
	$(BIN)/python bench/drift_scan.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
