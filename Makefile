# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

SCAN := $(VENV)/.native-built

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP) $(SCAN)

# the native OTLP/JSON tier (ingest/_otlpscan.c) is rebuilt when its source is newer than the build
$(SCAN): $(STAMP) ingest/_otlpscan.c
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(SCAN)

demo: $(SCAN)
	$(BIN)/dcr demo

test: $(SCAN)
	$(BIN)/ruff check .
	$(BIN)/python -m tests.mcp_inspector install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(SCAN)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
