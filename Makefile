# Two commands for a new machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench i18n

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

# The operator's language (omniconsole/i18n.py): extract every _()/ngettext()/N_()/Nn_() string with Babel,
# add new ones to each catalog (empty, so the completeness test names them) and compile the .mo files.
LOCALE := omniconsole/locale
LANGS := en ru
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k Nn_:1,2 -k Np_:1c,2 --add-location=file --sort-output --no-wrap --project=omniconsole -o $(LOCALE)/omniconsole.pot .
	for lang in $(LANGS); do \
	  if [ -f $(LOCALE)/$$lang/LC_MESSAGES/omniconsole.po ]; then \
	    $(BIN)/pybabel update -i $(LOCALE)/omniconsole.pot -d $(LOCALE) -D omniconsole -l $$lang --no-wrap --ignore-obsolete -N; \
	  else \
	    $(BIN)/pybabel init -i $(LOCALE)/omniconsole.pot -d $(LOCALE) -D omniconsole -l $$lang --no-wrap; \
	  fi; \
	done
	$(BIN)/pybabel compile -d $(LOCALE) -D omniconsole --statistics

clean:
	rm -rf $(VENV) build *.egg-info
