# Two commands for a fresh clone (README): `make run` and `make test`.
# Each creates .venv and installs the project when missing or when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run demo test test-fast lint format bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the bot; the sandbox (fake Telegram + virtual patients) when no token is set
	$(BIN)/python -m bot run

demo: $(STAMP)  ## play the sandbox script once and exit
	$(BIN)/python -m bot demo

test: $(STAMP) lint  ## lint, types, then every test (SQLite, and PostgreSQL when TEST_DATABASE_URL is set)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)  ## the quick loop: no slow or fault tests
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow and not fault"

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot tests bench
	$(BIN)/mypy --strict bot
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix bot tests bench
	$(BIN)/ruff format bot tests bench

bench: $(STAMP)
	$(BIN)/python -m bot bench

bench-quick: $(STAMP)
	$(BIN)/python -m bot bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
