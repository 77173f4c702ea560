# The two commands: `make demo` runs a simulated room with its dashboard and the
# ingest endpoint on localhost; `make test` installs what the tests need and runs them.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test setup lint bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/sensocto-lab demo

test:
	bash scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench
