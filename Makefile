# Two commands do everything on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
DEMO := $(DATA)/demo
STAMP := $(VENV)/.installed

.PHONY: install test lint serve demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its dev extras

lint: install ## ruff over the code and tests
	$(BIN)/ruff check src tests benchmarks

test: lint ## unit and end-to-end tests
	$(BIN)/pytest

demo: install ## simulate demo data for both detectors
	$(BIN)/illicitflows simulate transactions --out $(DEMO)/transactions --accounts 20000 --days 10
	$(BIN)/illicitflows simulate trade --out $(DEMO)/trade --declarations 50000

serve: demo ## install, build demo data (training and serving join as they land)

clean:
	rm -rf $(VENV) $(DATA)
