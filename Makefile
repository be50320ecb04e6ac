# Two commands do everything on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
DEMO := $(DATA)/demo
PORT ?= 3000
STAMP := $(VENV)/.installed
CLI := $(BIN)/illicitflows
export ILLICITFLOWS_DATA_DIR := $(abspath $(DATA))

.PHONY: install test lint serve demo-data demo-models mlflow-ui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its dev extras

lint: install ## ruff over the code, tests and benchmarks
	$(BIN)/ruff check src tests benchmarks

test: lint ## unit and end-to-end tests
	$(BIN)/pytest

$(DEMO)/transactions/transactions.csv: | $(STAMP)
	$(CLI) simulate transactions --out $(DEMO)/transactions --accounts 20000 --days 10 \
		--laundering-rate 0.005

$(DEMO)/trade/declarations.csv: | $(STAMP)
	$(CLI) simulate trade --out $(DEMO)/trade --declarations 50000

demo-data: $(DEMO)/transactions/transactions.csv $(DEMO)/trade/declarations.csv ## simulate demo data

$(DEMO)/.models: $(DEMO)/transactions/transactions.csv $(DEMO)/trade/declarations.csv
	$(CLI) train transactions --data $(DEMO)/transactions/transactions.csv \
		--patterns $(DEMO)/transactions/patterns.txt --metrics-out $(DEMO)/transactions-metrics.json
	$(CLI) promote transactions
	$(CLI) train trade --data $(DEMO)/trade/declarations.csv \
		--mirror $(DEMO)/trade/mirror_exports.csv --metrics-out $(DEMO)/trade-metrics.json
	$(CLI) promote trade
	touch $@

demo-models: $(DEMO)/.models ## train both detectors on the demo data and promote them

serve: demo-models ## install, demo data, train, register, promote, then serve on :$(PORT)
	$(CLI) report model-card transactions --version champion --update models/transactions.md
	$(CLI) report model-card trade --version champion --update models/trade.md
	@echo "API key (admin role: scores and reads decisions) - shown once, keep it:"
	@KEY=$$($(CLI) keys create --role admin --label make-serve 2>/dev/null); echo "  $$KEY"; \
	echo "Try, once /readyz answers 200:"; \
	echo "  curl -s -X POST http://127.0.0.1:$(PORT)/v1/transactions/score \\"; \
	echo "       -H 'Authorization: Bearer $$KEY' -H 'Content-Type: application/json' \\"; \
	echo "       -d @examples/transactions_request.json"; \
	echo "Review page (alert queue, decision reports, dispositions): sign in with this key at"; \
	echo "  http://127.0.0.1:$(PORT)/ui"
	$(CLI) serve --port $(PORT)

mlflow-ui: install ## the MLflow UI on the default tracking database
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(DATA))/mlflow.db --port 5000

clean:
	rm -rf $(VENV) $(DATA)
