# marketcast: every target sets up .venv itself (quick when it is already current).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench bench-gpu check lock clean

install: $(STAMP)

# The venv is built afresh when it cannot run pip on Python >= 3.11 (missing, interrupted while
# it was made, its interpreter gone, another Python's) or was built from another lock (so that a
# package the lock dropped goes too); otherwise the lock and the package are installed over it.
$(STAMP): requirements.lock pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "marketcast needs Python >= 3.11: make PY=python3.11 ..." >&2; exit 1; }
	@if ! $(BIN)/python -c 'import sys, pip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	  || { test -f $(VENV)/.lock && ! cmp -s requirements.lock $(VENV)/.lock; }; then \
	  echo "building $(VENV) afresh"; rm -rf $(VENV) && $(PY) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	cp requirements.lock $(VENV)/.lock
	touch $(STAMP)

run: install
	$(BIN)/marketcast run

test: install
	$(BIN)/python -m pytest

# Football accuracy + penaltyblog (and the edge/cloud router replayed on its forecasts); the
# crypto pipeline (local and Ray, 5/10/20 pairs) and its backtest against vectorbt; the neural
# engine (epoch time, ratio to closing beside Dixon-Coles and LightGBM), its ROI fine-tuning and
# compression; then the serving load tests against the registry's champions (trained first when
# the registry is empty): 500 req/s on two workers (the target), one worker at 300 req/s, and the
# cloud path alone (edge threshold above 1) at 100 req/s, its network in onnxruntime (the default)
# and in torch. A run over its target still writes its results.
SERVE_2W := "$(CURDIR)/$(BIN)/python -m uvicorn --factory {app} --host {host} --port {port} \
	--workers 2 --log-level warning --no-access-log"
bench: install
	$(BIN)/python bench/football.py
	$(BIN)/python bench/crypto.py
	$(BIN)/python bench/crypto_backtest_vs_vectorbt.py
	$(BIN)/python bench/neural.py
	$(BIN)/python bench/compress_rl.py --model neural
	test -f registry/football/1x2/champion.json || $(BIN)/marketcast run
	-$(BIN)/python bench/serving.py --command $(SERVE_2W) --out bench/results/serving.json
	-$(BIN)/python bench/serving.py --rate 300 --phases single,reload \
		--out bench/results/serving_1worker_300rps.json
	-MARKETCAST_EDGE_THRESHOLD=1.01 $(BIN)/python bench/serving.py --command $(SERVE_2W) \
		--phases single --rate 100 --out bench/results/serving_cloud_path.json
	-MARKETCAST_NEURAL_RUNTIME=torch MARKETCAST_EDGE_THRESHOLD=1.01 $(BIN)/python bench/serving.py \
		--command $(SERVE_2W) --phases single --rate 100 \
		--out bench/results/serving_cloud_path_torch.json

# On a machine with an NVIDIA GPU only: the CUDA tests and the GPU benchmark (bench/results/gpu.json).
bench-gpu: install
	$(BIN)/python -m pytest -m gpu tests/unit/test_cuda.py
	$(BIN)/python bench/gpu.py
	test -f registry/football/1x2/champion.json || $(BIN)/marketcast run
	$(BIN)/python bench/gpu_cloud_path.py

check: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

# Regenerate the pinned lock from pyproject.toml in a throwaway venv.
# A local build label (torch's +cpu) is dropped from the pins: ==2.13.0 takes either build, while
# a +cpu pin installs only where that wheel sits on local disk.
lock:
	rm -rf /tmp/marketcast-lock && $(PY) -m venv /tmp/marketcast-lock
	/tmp/marketcast-lock/bin/pip install --quiet '.[dev]'
	/tmp/marketcast-lock/bin/pip freeze --exclude marketcast | sed 's/^\([^=]*==[^+]*\)+.*/\1/' \
	  > requirements.lock

clean:
	rm -rf $(VENV) runs registry .pytest_cache .mypy_cache .ruff_cache
