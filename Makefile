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

.PHONY: setup setup-dev demo test bench bench-scale lint clean extension library

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
	$(BIN)/python -m bench.live --out docs/benchmarks.md
	$(BIN)/python -m bench.rig_library --out docs/benchmarks.md

# Large libraries (about 25 min on 2 cores): a real 60k-entry index build, then 100k and 1M indexes assembled
# from its arrays (a real 1M build takes hours on this CPU; see bench/library_scale.py).
bench-scale: setup-dev
	$(BIN)/python -m bench.library_scale --entries 60000 --out docs/benchmarks.md
	$(BIN)/python -m bench.library_scale --entries 100000 --assemble-from 60000 --out docs/benchmarks.md
	$(BIN)/python -m bench.library_scale --entries 1000000 --assemble-from 60000 --out docs/benchmarks.md

extension: setup-dev
	$(BIN)/python tools/build_extension.py --out dist

# The built-in pose library (backend/assets/library, committed): renders with bpy.
library: setup-dev
	$(BIN)/python -m training.build_library

lint: setup-dev
	$(BIN)/ruff check backend training deepexpr_blender tests bench tools

clean:
	rm -rf out cache .pytest_cache

# ---- Blender versions (issue 11). The extension tests run in each supported Blender: bpy 5.0.1 in .venv
# (the suite above), 4.2 LTS in .venv-bpy42 (part of `make test`), 4.5 LTS in .venv-bpy45
# (`make test-blender-all`). Each .venv-bpyXY has its own bpy and sees .venv's packages behind it; the
# backend child keeps running in .venv (DEEPEXPR_BACKEND_PYTHON).
BLENDER_TESTS := tests/test_extension.py tests/test_extension_*.py tests/test_keying.py tests/test_rig_library.py \
	tests/test_rig_addon.py tests/test_live_addon.py

.PHONY: test-blender-42 test-blender-45 test-blender-all test-real-window

.venv-bpy%/.ready: $(STAMP_DEV) tools/blender_venv.py
	$(BIN)/python tools/blender_venv.py .venv-bpy$* --bpy $(BPY_$*) --project-venv $(VENV)
	touch $@

BPY_42 := 4.2.23
BPY_45 := 4.5.15

test-blender-42 test-blender-45: test-blender-%: .venv-bpy%/.ready
	DEEPEXPR_BACKEND_PYTHON=$(abspath $(BIN)/python) .venv-bpy$*/bin/python -m pytest -q -p no:cacheprovider -p tests.blender_exit $(BLENDER_TESTS)

test: test-blender-42

test-blender-all: test test-blender-45

# A real Blender window (Debian's Blender 4.3 under Xvfb in a Debian trixie chroot, made on first use by
# debootstrap; needs root, so not part of `make test`): runs the workflow, checks the screenshots, copies
# them into docs/extension/. CHROOT=/path reuses a chroot made elsewhere. See docs/extension.md.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROOT ?= build/trixie
test-real-window: setup-dev
	$(SUDO) $(BIN)/python tools/real_window.py --chroot $(CHROOT) --docs docs/extension
