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

# Three test processes on two cores: a third of the suite's time is spent waiting (Telegram's
# 29 messages a second in the real-process tests, the rehearsal's simulated clock, child
# processes), and a third worker fills it (the whole suite on both databases: 6.8 min here).
WORKERS ?= 3

test: $(STAMP) lint  ## lint, types, then every test (SQLite, and PostgreSQL when TEST_DATABASE_URL is set)
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile

test-fast: $(STAMP)  ## the quick loop: no slow or fault tests
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile -m "not slow and not fault"

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
