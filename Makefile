# fedirelay: `make run` starts everything locally, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck bench bench-long drills clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/fedirelay run

test: $(STAMP)
	$(BIN)/ruff check service federation workers tests bench
	$(BIN)/mypy --strict federation
	$(BIN)/pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check service federation workers tests bench
	$(BIN)/ruff format --check service federation workers tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict federation

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

bench-long: $(STAMP)
	$(BIN)/python -m bench.run_all --only memory

drills: $(STAMP)
	$(BIN)/python -m bench.drills

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
