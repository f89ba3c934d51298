# Two commands for a new machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/omniconsole demo

# Two workers (pytest-xdist): each test stands up its own peers on free ports and temp dirs.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2

# What .ci/run checks before the tests: lint rules and formatting (pyproject.toml [tool.ruff]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/omniconsole bench ingest --messages 1000000
	$(BIN)/omniconsole bench query

clean:
	rm -rf $(VENV) build *.egg-info
