# Everything the project needs is installed into .venv by these targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test lint demo bench clean itest-openstack

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(PY) -m ruff check vesagent tests
	$(PY) -m ruff format --check vesagent tests
	$(PY) -m mypy

demo: $(STAMP)
	$(VENV)/bin/vesagent demo

bench: $(STAMP)
	$(PY) -m vesagent.bench

# Opt-in: against the real OpenStack the standard OS_* variables point at (see README).
itest-openstack: $(STAMP)
	VESAGENT_ITEST=1 $(PY) -m pytest -v -p no:cacheprovider tests/itest

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis var bench-results.json
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
