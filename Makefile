# DeepExpr for Blender. Two commands are the contract (README):
#   make demo   set up .venv and run the main job on the built-in sample face
#   make test   set up .venv and run the test suite
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: setup demo test bench lint clean extension library

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY) (Blender 5.0's Python version)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip<26" "setuptools<81" wheel
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(BIN)/python -m backend.demo --out out/demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m bench.pipeline --out docs/benchmarks.md
	$(BIN)/python -m bench.retrieval --out docs/benchmarks.md
	$(BIN)/python -m bench.generation --out docs/benchmarks.md

extension: setup
	$(BIN)/python tools/build_extension.py --out dist

library: setup
	$(BIN)/python -m training.build_library

lint: setup
	$(BIN)/ruff check backend training deepexpr_blender tests bench

clean:
	rm -rf out cache .pytest_cache
