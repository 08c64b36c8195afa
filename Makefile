# Two commands for readers and CI (see README.md):
#   make book   set up .venv, build the site into _build/html from the stored notebook outputs
#   make test   set up .venv, run every notebook (nbval), the unit tests on TensorFlow and on
#               JAX (KERAS_BACKEND=jax) and the Grad-CAM chapter on JAX, build the site with
#               warnings as errors, then load every page in headless Chromium
# Extra: make bench   runs the benchmarks in bench/
#        make test-torch  installs PyTorch (torch==2.13.0, not in requirements.txt: a large
#                    download) into .venv if missing and runs the unit tests on Keras's torch backend

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := book

# Python 3.11 is what requirements.txt is pinned for; fall back to any python3.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Written after a successful install, so a second run skips pip entirely; remade whenever the
# requirements or the package metadata change.
STAMP := $(VENV)/.convviz-installed

# A test run trains the book's model into a cache of its own (hermetic: nothing from
# ~/.cache/convviz is reused) unless the caller points CONVVIZ_CACHE somewhere on purpose.
ifndef CONVVIZ_CACHE
CONVVIZ_CACHE := $(CURDIR)/_build/cache
FRESH_CACHE := yes
endif

# Chapters run in toc order, one fresh kernel each, and say how long they took (the teaching
# page quotes these times); the slowest cell gets 15 minutes.
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=900

.PHONY: book test test-torch bench setup browser node explorer site site-test

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 (or python3) is needed to create $(VENV)." >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -e .
	touch $@

# Debian's chromium and its driver for the browser test. Installed only where we can (root with
# apt); elsewhere the browser test fails and says what is missing. Never fatal here, so
# `make test` still runs everything else.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's chromium and chromium-driver for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	    || echo "warning: could not install chromium; the browser test will fail" >&2; \
	else \
	  echo "warning: chromium/chromedriver missing and not root: install Debian's chromium and chromium-driver, or the browser test fails" >&2; \
	fi

# Node.js and npm for the explorer page (TensorFlow.js from npm): Debian's when root and missing,
# as `browser` does for Chromium; otherwise a clear message and a failure, since the page needs it.
node:
	@if command -v node >/dev/null && command -v npm >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian's nodejs and npm for the explorer page"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	else \
	  echo "error: the explorer page needs Node.js and npm (to install TensorFlow.js from explorer/package-lock.json): install Debian's nodejs and npm, or Node.js 20 from nodejs.org" >&2; \
	  exit 1; \
	fi

# TensorFlow.js exactly as explorer/package-lock.json pins it; reinstalled when the lock changes.
explorer/node_modules/.package-lock.json: explorer/package-lock.json explorer/package.json | node
	cd explorer && npm ci --no-audit --no-fund
	touch $@

# The explorer's files, where _config.yml's html_extra_path copies them into the site as
# explorer/: its scripts and style, TensorFlow.js's tf.min.js (served by the site: no CDN),
# and the networks, photos and atlas that convviz_helpers.export writes.
EXPLORER_SITE := _build/explorer-site/explorer
explorer: $(STAMP) explorer/node_modules/.package-lock.json
	rm -rf $(EXPLORER_SITE)
	mkdir -p $(EXPLORER_SITE)
	cp explorer/graph.js explorer/explorer.js explorer/explorer.css explorer/node_modules/@tensorflow/tfjs/dist/tf.min.js $(EXPLORER_SITE)/
	$(BIN)/python -m convviz_helpers.export $(EXPLORER_SITE)

# The site, from a clean output folder: Sphinx re-reads only changed pages, so an incremental
# build would stop reporting a warning in an unchanged page, and removed chapters would linger.
# Notebooks are not executed here (execute_notebooks: off): their stored outputs are used.
site: $(STAMP) explorer
	rm -rf _build/html _build/.doctrees _build/jupyter_execute
	$(BIN)/jupyter-book build . -W --keep-going

book: site

# The browser test against whatever _build/html holds.
site-test: $(STAMP) browser explorer/node_modules/.package-lock.json
	$(BIN)/python -m pytest -m browser tests/test_book.py tests/test_explorer.py

test: export CONVVIZ_CACHE := $(CONVVIZ_CACHE)
test: $(STAMP) browser explorer/node_modules/.package-lock.json
	$(if $(FRESH_CACHE),rm -rf "$(CONVVIZ_CACHE)")
	notebooks="$$($(BIN)/python tests/toc_files.py --notebooks)"; \
	if [ -z "$$notebooks" ]; then echo "No notebooks in _toc.yml: nothing for nbval."; fi; \
	for notebook in $$notebooks; do \
	  start=$$SECONDS; $(BIN)/python -m pytest $(NBVAL_FLAGS) $$notebook; \
	  echo "nbval: $$notebook ran in $$((SECONDS - start)) s (fresh kernel, quick profile)"; \
	done
	$(BIN)/python -m pytest
	@echo "== The same unit tests and the Grad-CAM chapter on Keras's JAX backend"
	KERAS_BACKEND=jax $(BIN)/python -m pytest
	KERAS_BACKEND=jax $(BIN)/python -m pytest $(NBVAL_FLAGS) notebooks/04_grad_cam.ipynb
	$(MAKE) --no-print-directory site
	$(MAKE) --no-print-directory site-test

# The unit tests on Keras's PyTorch backend; not part of `make test` (PyTorch is a large install,
# so it is not pinned in requirements.txt but installed here when missing).
test-torch: export CONVVIZ_CACHE := $(CONVVIZ_CACHE)
test-torch: $(STAMP)
	$(if $(FRESH_CACHE),rm -rf "$(CONVVIZ_CACHE)")
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --disable-pip-version-check torch==2.13.0
	KERAS_BACKEND=torch $(BIN)/python -m pytest

# The course assignments (book/teaching.md): `otter assign` on each master notebook (the four
# chapter assignments in assignments/ and the exercises chapter) gives a student notebook (no
# solutions; it writes its own public tests, so it can travel alone) and an autograder zip for
# `otter run` or Gradescope. `make test` grades them (tests/test_assignments.py,
# tests/test_assignment.py).
.PHONY: assignments
assignments: $(STAMP)
	$(BIN)/python tools/build_assignment.py -o _build/assignments

bench: $(STAMP)
	shopt -s nullglob; for script in bench/*.py; do \
	  [ "$$script" = bench/timing.py ] && continue; echo "== $$script"; $(BIN)/python "$$script"; done
	@echo "== bench/backends.py on JAX"
	KERAS_BACKEND=jax $(BIN)/python bench/backends.py
