# One place for every command. The first two are the README's promise:
#   make serve   set up and run Sous with the sandbox store (a recipe fires on its own)
#   make test    set up and run the test suite

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: serve test coverage check lint format bench demo fuzz clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Sous needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

serve: $(STAMP)
	$(BIN)/sous serve --sandbox

demo: $(STAMP)
	$(BIN)/sous demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/sous validate recipes/
	$(BIN)/hadolint docker/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml

# The suite with coverage; fails under the floor in pyproject.toml ([tool.coverage.report]).
coverage: $(STAMP)
	$(BIN)/python -m pytest -q --cov --cov-report=term

check: lint coverage

# schemathesis against a live `sous serve --sandbox`: every check, every phase. FUZZ_DATABASE_URL
# names a PostgreSQL server to run on (a scratch database is made there); SQLite otherwise.
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz $(if $(FUZZ_DATABASE_URL),--database-url $(FUZZ_DATABASE_URL))

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench.bench_conditions
	$(BIN)/python -m bench.bench_dispatch
	$(BIN)/python -m bench.bench_pipeline
	$(BIN)/python -m bench.bench_backtest

# Build the wheel, install it in a fresh virtual environment, and run the sandbox from an
# empty folder until the sold-out recipe fires (CI runs it).
wheel-check: $(STAMP)
	$(BIN)/python scripts/wheel_check.py

# Fetch the pinned BigCommerce specs the tests check against (into $$SOUS_BIGCOMMERCE_SPECS,
# else ../shared/bigcommerce/specs); needs access to raw.githubusercontent.com.
specs:
	$(PYTHON) scripts/fetch_bigcommerce_specs.py

clean:
	rm -rf $(VENV) sous-data .mypy_cache .ruff_cache .pytest_cache
