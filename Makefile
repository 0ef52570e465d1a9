# marketcast: every target sets up .venv itself (quick when it is already current).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench check lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: install
	$(BIN)/marketcast run

test: install
	$(BIN)/python -m pytest

# Football accuracy + penaltyblog, then the serving load tests against the registry's champions
# (trained first when the registry is empty): 500 req/s (the target) and 300 req/s with reloads.
bench: install
	$(BIN)/python bench/football.py
	test -f registry/football/1x2/champion.json || $(BIN)/marketcast run
	-$(BIN)/python bench/serving.py --out bench/results/serving.json  # reports, even when over target
	$(BIN)/python bench/serving.py --rate 300 --phases single,reload \
		--out bench/results/serving_300rps.json

check: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

# Regenerate the pinned lock from pyproject.toml in a throwaway venv.
lock:
	rm -rf /tmp/marketcast-lock && $(PY) -m venv /tmp/marketcast-lock
	/tmp/marketcast-lock/bin/pip install --quiet '.[dev]'
	/tmp/marketcast-lock/bin/pip freeze --exclude marketcast > requirements.lock

clean:
	rm -rf $(VENV) runs registry .pytest_cache .mypy_cache .ruff_cache
