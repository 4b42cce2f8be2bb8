# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fuzz clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the install also builds the native tiers: a newer ingest/_otlpscan.c, _spankeys.c or _gather.c reinstalls
$(STAMP): $(BIN)/python pyproject.toml ingest/_otlpscan.c ingest/_spankeys.c ingest/_gather.c
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dcr demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m tests.mcp_inspector install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# the native tier's parity fuzz at length (make test runs a 15-second slice: tests/test_native_fuzz.py)
fuzz: $(STAMP)
	$(BIN)/python bench/fuzz_native.py --runs 20000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
