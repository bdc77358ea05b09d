# Everything the project needs is installed into .venv by these targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test lint demo bench clean itest-openstack lock lock-upgrade image itest-image

# --- locked dependencies (README "Dependencies") ---------------------------------------------
# The venv and the image install the same pinned, hash-checked versions: requirements.lock
# (runtime, the image) and requirements-test.lock (runtime + the test extra, this venv).
# tools/check_lock.py stops here, naming what to fix, when setup.py and the locks disagree.
LOCK      := requirements.lock
TEST_LOCK := requirements-test.lock
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.7.0
COMPILE   := $(LOCK_VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
             --no-emit-index-url --no-emit-find-links --no-emit-trusted-host

$(STAMP): setup.py $(LOCK) $(TEST_LOCK) tools/check_lock.py
	$(PYTHON) tools/check_lock.py setup.py $(LOCK) $(TEST_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(TEST_LOCK)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

# Re-pin after a change to setup.py's requirements, keeping every pin that still fits.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
	    $(LOCK_VENV)/bin/pip install -q $(PIP_TOOLS); }
	$(COMPILE) $(LOCK_ARGS) -o $(LOCK) setup.py
	$(COMPILE) $(LOCK_ARGS) --extra test -c $(LOCK) -o $(TEST_LOCK) setup.py
	$(PYTHON) tools/check_lock.py setup.py $(LOCK) $(TEST_LOCK)

# Move every pin to the newest version setup.py allows.
lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

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

# --- image (README "Container image") --------------------------------------------------------
# podman (or docker) with --format docker, so HEALTHCHECK survives (OCI images drop it).
ENGINE ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE  ?= vesagent:$(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' vesagent/__init__.py)
# e.g. BUILD_ARGS='--from localhost/python:3.11-slim' where Docker Hub cannot be reached.
BUILD_ARGS ?=

image:
	@test -n "$(ENGINE)" || { echo "make image: neither podman nor docker is installed" >&2; exit 1; }
	$(PYTHON) tools/check_lock.py setup.py $(LOCK) $(TEST_LOCK)
	$(ENGINE) build $(if $(findstring podman,$(ENGINE)),--format docker) $(BUILD_ARGS) -t $(IMAGE) .
	$(ENGINE) image inspect $(IMAGE) --format '{{.Size}}' | awk '{printf "image $(IMAGE): %.1f MB\n", $$1/1e6}'

# Opt-in: build the image, then run the agent from it (host network) against the simulators.
# ITEST_RUN_ARGS: extra `run` options the host needs (README "Container image").
itest-image: image $(STAMP)
	VESAGENT_ITEST_IMAGE=$(IMAGE) VESAGENT_ITEST_ENGINE='$(ENGINE)' \
	    VESAGENT_ITEST_RUN_ARGS='$(ITEST_RUN_ARGS)' \
	    $(PY) -m pytest -v -p no:cacheprovider tests/image

clean:
	rm -rf $(VENV) $(LOCK_VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis var bench-results.json
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
