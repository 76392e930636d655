# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast bench bench-quick browser-deps focus-validator lint settings-doc

$(BIN)/callmeter: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,lake]'
	touch $(BIN)/callmeter

setup: $(BIN)/callmeter

demo: setup
	$(BIN)/callmeter demo

# Chromium for the one real-browser test comes from Debian's packages, never a tool's download.
browser-deps:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# The FinOps Foundation's FOCUS validator for the FOCUS export test: its own venv (it needs
# Python >= 3.12 and pins numpy/pandas below ours), cached in .cache/ (git-ignored). Without
# Python 3.12 a developer's run skips that test; CI (CI=true) fails instead.
FOCUS_VENV := .cache/focus-validator
focus-validator:
	@if [ -x $(FOCUS_VENV)/bin/focus-validator ]; then :; \
	elif PYENV_VERSION=3.12.1 python3.12 -c "" 2>/dev/null; then \
	  PYENV_VERSION=3.12.1 python3.12 -m venv $(FOCUS_VENV) && \
	  $(FOCUS_VENV)/bin/pip install -q --upgrade pip && \
	  $(FOCUS_VENV)/bin/pip install -q "focus-validator==2.2.1" "pyarrow<18"; \
	elif [ "$$CI" = "true" ]; then \
	  echo "CI needs Python 3.12 (pyenv 3.12.1) for focus-validator" >&2; exit 1; \
	else echo "note: no Python 3.12 here: the FOCUS validator test will be skipped" >&2; fi

test: setup browser-deps focus-validator
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser and not lake"

bench: setup
	$(BIN)/python -m benchmarks

bench-quick: setup
	$(BIN)/python -m benchmarks --quick

# ruff, the layer contracts (import-linter, pyproject.toml) and mypy --strict over every package
# docs/settings.md's table, from the settings' one definition (ledger/config.py)
settings-doc: setup
	$(BIN)/python -c "from ledger.config import settings_table; print(settings_table(), end='')"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
