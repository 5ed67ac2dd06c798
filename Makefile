# Two commands for people: `make run` and `make test`. Both set up on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTO_STAMP := authz/_proto/.generated
PROTOS := $(shell find protos -name '*.proto')

.PHONY: install proto run test lint bench fuzz soak clean

install: $(STAMP) $(PROTO_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

proto: $(PROTO_STAMP)

$(PROTO_STAMP): $(STAMP) $(PROTOS) protos/generate.py
	$(PY) protos/generate.py
	touch $@

run: install
	$(PY) deploy/envoy/run_demo.py

test: install
	$(PY) -m pytest -q tests

fuzz: install
	$(PY) -m pip install --quiet atheris
	mkdir -p tests/fuzz/corpus
	$(PY) tests/fuzz/fuzz_check.py -runs=$${FUZZ_RUNS:-1000000} -max_len=4096 tests/fuzz/corpus

soak: install
	$(PY) bench/soak.py

bench: install
	$(PY) bench/run.py

lint: install
	$(VENV)/bin/ruff check authz tests protos deploy bench tools
	$(VENV)/bin/ruff format --check authz tests protos deploy bench tools

clean:
	rm -rf $(VENV) authz/_proto build *.egg-info
