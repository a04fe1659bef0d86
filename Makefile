# mmseg_contrast: one-command set-up, demo and tests.
#   make demo   - create .venv, install the pinned stack, fetch the offline
#                 data + weights, train and evaluate the CPU demo, print mIoU
#   make test   - same set-up, then the test suite
#   make lint   - ruff (flake8 + isort rules, ruff.toml) on the whole tree
# Set-up is idempotent and cached: a second run reinstalls/re-downloads nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.mmseg_contrast-installed
MMCV_STAMP := $(VENV)/.mmcv-full-installed
REQS := requirements/runtime.txt requirements/mminstall.txt requirements/tests.txt setup.py
PYTEST_ARGS ?=

.PHONY: install data demo test lint mmcv-full clean-venv

install: $(STAMP)

$(STAMP): $(REQS)
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade "pip<26"
	$(VPY) -m pip install -r requirements/runtime.txt $$(test -f $(MMCV_STAMP) || echo -r requirements/mminstall.txt) -r requirements/tests.txt
	$(VPY) -m pip install --no-deps --no-build-isolation -e .
	@touch $@

data: install
	$(VPY) tools/dataset_converters/prepare_offline_data.py --all

demo: data
	$(VPY) tools/run_demo.py $(DEMO_ARGS)

test: data
	$(VPY) -m pytest tests $(PYTEST_ARGS)

lint: install
	$(VPY) -m ruff check --no-cache .

# Optional: full mmcv with compiled ops (~35 min build on 2 cores).
mmcv-full: install
	$(VPY) -m pip uninstall -y mmcv-lite
	MMCV_WITH_OPS=1 $(VPY) -m pip install --no-build-isolation -r requirements/mmcv_full.txt
	@touch $(MMCV_STAMP)

clean-venv:
	rm -rf $(VENV)

# DenseCL demo: pre-train on the AAL slice images, convert, fine-tune from
# DenseCL vs random init, evaluate (CPU). DENSECL_ARGS e.g. --finetune-iters 1000
.PHONY: densecl-demo
densecl-demo: data
	$(VPY) tools/run_densecl_demo.py $(DENSECL_ARGS)

# Accuracy suite (configs/bench/README.md): 4 paired comparisons x 3 seeds on
# the Fashion-canvas set -> docs/results/accuracy_suite.{json,png}. Resumable;
# `make bench-accuracy ONLY=semi_vs_sup` runs one comparison. BENCH_ARGS e.g.
# "--max-iters 4000 --work-dir work_dirs/bench_accuracy_4k --out
# docs/results/accuracy_suite_4k.json --png docs/results/accuracy_suite_4k.png"
# for a longer schedule on a GPU (its own runs; the 400-iteration ones stay).
.PHONY: bench-accuracy
bench-accuracy: data
	$(VPY) tools/analysis/bench_accuracy.py $(if $(ONLY),--only $(ONLY)) $(BENCH_ARGS)

# GPU machine without a package registry (docs/gpu.md). Here:
#   make gpu-wheels  - the pinned wheels of requirements/gpu_wheels.txt
#                      (CPython 3.12, x86-64 Linux) + this project's wheel
#                      -> gpu_wheels/ (git-ignored), closure checked, size
#                      printed
# There (python3 = the image's Python with torch + CUDA; no .venv needed):
#   make gpu-check   - venv over the image's packages, installs gpu_wheels/,
#                      pytest -m cuda, per-model it/s + peak memory vs the
#                      plain counterparts (fp32 + AMP), the loss benchmarks
#                      on CUDA, host syncs per iteration
#                      -> docs/results/gpu_check.json. GPU_CHECK_ARGS e.g.
#                      "--models deeplabv3_r101_contrast --iters 10"
GPU_WHEELS ?= gpu_wheels
GPU_PYTHON ?= python3
GPU_CHECK_ARGS ?=
.PHONY: gpu-wheels gpu-check
gpu-wheels: install
	$(VPY) tools/misc/gpu_wheels.py --dest $(GPU_WHEELS)

gpu-check:
	$(GPU_PYTHON) tools/analysis/gpu_check.py --wheels $(GPU_WHEELS) $(GPU_CHECK_ARGS)
