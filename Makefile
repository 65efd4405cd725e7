# `make test` and `make demo` set up everything they need on a fresh machine:
# a local .venv with the package and its test extras, and (as root) the Debian packages
# in scripts/system-packages.txt.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: test demo venv sysdeps bench bench-peers clean man wheel

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

sysdeps:
	./scripts/install-system-deps.sh

test: venv sysdeps
	$(PY) -m pytest -q -rs $(PYTEST_ARGS)

demo: venv
	$(VENV)/bin/hadirector demo

# hadirector beside heartbeat 3, keepalived, HAProxy and nginx, every table in one run (root; about
# 45 minutes; docs/benchmarks.md "Peers"). BENCH_ARGS="--only crash --rounds 5" for a part of it.
bench-peers: venv sysdeps
	$(PY) bench/peers $(BENCH_ARGS)

# the manual pages shipped in the package, from the argument parser and docs/ (scripts/manpages.py)
man: venv
	$(PY) scripts/manpages.py

# dist/hadirector-*.whl (docs/operations.md: Install)
wheel: venv
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
