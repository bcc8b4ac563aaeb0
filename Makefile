# sitefinder — two commands do all the set-up on a fresh clone:
#   make demo   create .venv, install, rank the bundled Oslo demo plots into output/
#   make test   create .venv, install with test extras, run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sitefinder run
	$(BIN)/sitefinder select --units 12
	$(BIN)/sitefinder report --units 12

test: $(STAMP)
	$(BIN)/ruff check sitefinder tests benchmarks scripts
	SITEFINDER_QUIET=1 $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check sitefinder tests benchmarks scripts

clean:
	rm -rf output/*.csv output/*.xlsx output/*.gpkg output/*.html output/*.pdf output/*.json .cache

# Deliberate bugs in the core modules, one at a time: does the test suite notice them?
# (scripts/mutate.py; not part of `make test`, about 15–30 minutes on two cores.)
.PHONY: mutate
mutate: $(STAMP)
	$(BIN)/python scripts/mutate.py
