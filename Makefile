# motcua-ops: the two commands most people need are `make demo` and `make test`.
# Both set up what they need (Debian packages, .venv) and are quick when it is done.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install when the pins change; the stamp makes a set-up venv a no-op.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml exporters/pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-12)
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help host venv demo test lint pytest bench lock clean lab-up lab-down lab-status

help:
	@echo "make demo   - bring the lab up, smoke-test it, provision its counter PCs, the wards' certificates, the monitoring host and the gear (leaves the lab up)"
	@echo "make test   - set-up, every lint, the unit and the lab tests, each phase timed (.ci/run runs exactly this)"
	@echo "make lint   - ruff, yamllint, import-linter (layer contracts), ansible-test sanity (motcua.ops), ansible-lint"
	@echo "make pytest - the test suite only"
	@echo "make bench  - benchmarks (print figures; not part of make test)"
	@echo "make venv   - create .venv with the pinned packages"
	@echo "make lab-up / lab-down / lab-status - the simulated ward network (root)"

host:
	@scripts/bootstrap-host

$(STAMP): pyproject.toml constraints.txt | host
	@# a venv whose creation was interrupted has python but no pip: it is made again
	@test -x $(BIN)/pip || $(PYTHON) -m venv --clear $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "motcua-ops needs Python 3.11 (ansible-core 2.19)"'
	@# uv (pinned in constraints.txt) installs the pins in seconds where pip takes a minute (it links
	@# from its cache, ~/.cache/uv); pip is the fallback where uv cannot reach an index.
	$(BIN)/pip install -q -c constraints.txt uv 2>&1 | sed '/is ignored: it is neither a file nor a directory/d'
	$(BIN)/uv pip install -q --python $(BIN)/python -c constraints.txt -e '.[dev]' -e ./exporters \
	  || $(BIN)/pip install -q -c constraints.txt -e '.[dev]' -e ./exporters 2>&1 | sed '/is ignored: it is neither a file nor a directory/d'
	@# the counters' pinned Ansible, served to them in pull mode (docs/pull.md): fetched now, not in a test
	$(BIN)/python -m motcua.pull.wheelhouse
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

# The steps are motcua/lab/demo.py's (printed as they run; each one's log in <lab home>/demo/);
# tests/integration/test_demo.py runs the same steps on the tests' lab.
demo: venv
	motcua lab demo

lab-up: venv
	motcua lab up

lab-down: venv
	motcua lab down

lab-status: venv
	motcua lab status

# ruff, yamllint, import-linter, then ansible-test sanity and ansible-lint side by side (scripts/lint).
lint: venv
	@scripts/lint

pytest: venv
	pytest

# Set-up, lint, unit tests, lab tests; the time of each phase at the end (scripts/test-phases).
test:
	@scripts/test-phases

bench: venv
	$(BIN)/python bench/inventory_render.py
	$(BIN)/python bench/lab_up.py
	$(BIN)/python bench/counters_run.py
	$(BIN)/python bench/exporter_probe.py
	$(BIN)/python bench/alert_latency.py
	$(BIN)/python bench/notify_burst.py
	$(BIN)/python bench/netgear_fleet.py
	$(BIN)/python bench/certs_registration.py
	$(BIN)/python bench/dossier_records.py
	$(BIN)/python bench/board_render.py

lock: venv
	{ echo "# Every Python package in .venv, pinned (transitive ones too)."; \
	  echo "# make venv installs with -c constraints.txt; regenerate with \`make lock\`."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^motcua'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
