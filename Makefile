# DeepExpr for Blender. Two commands are the contract (README):
#   make demo   set up .venv (the backend alone) and run the main job on the built-in sample face
#   make test   set up .venv (backend + bpy + test tools) and run the test suite
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
# Two environments in one .venv: the backend's runtime only, or everything (bpy for rendering, test tools).
STAMP_RUNTIME := $(VENV)/.installed-runtime-$(HASH)
STAMP_DEV := $(VENV)/.installed-dev-$(HASH)

.PHONY: setup setup-dev demo test bench lint clean extension library

setup: $(STAMP_RUNTIME)

setup-dev: $(STAMP_DEV)

$(VENV)/bin/python:
	@command -v $(PY) >/dev/null || { echo "need $(PY) (Blender 5.0's Python version)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26" "setuptools<81" wheel
	$(BIN)/pip install --quiet "torch==2.13.0"

$(STAMP_RUNTIME): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	rm -f $(VENV)/.installed-runtime-* && touch $@

$(STAMP_DEV): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e ".[render,test]"
	rm -f $(VENV)/.installed-* && touch $@ $(STAMP_RUNTIME)

demo: setup
	$(BIN)/python -m backend.demo --out out/demo

test: setup-dev
	$(BIN)/python -m pytest -q

bench: setup-dev
	$(BIN)/python -m bench.pipeline --out docs/benchmarks.md
	$(BIN)/python -m bench.retrieval --out docs/benchmarks.md
	$(BIN)/python -m bench.generation --out docs/benchmarks.md
	$(BIN)/python -m bench.rig_library --out docs/benchmarks.md

extension: setup-dev
	$(BIN)/python tools/build_extension.py --out dist

# The built-in pose library (backend/assets/library, committed): renders with bpy.
library: setup-dev
	$(BIN)/python -m training.build_library

lint: setup-dev
	$(BIN)/ruff check backend training deepexpr_blender tests bench tools

clean:
	rm -rf out cache .pytest_cache
