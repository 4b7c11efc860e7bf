# Set-up and checks. `make demo` installs and generates with the embedded default model;
# `make test` installs and runs lint, type checks and the test suite. Both create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build on this machine. GPU users: install a CUDA build of torch into .venv first
# (PyTorch's install selector gives the command), then `make install TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEMO_PROMPT ?= an emoji of a red apple

.PHONY: install demo test lint typecheck unit clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps "spandrel>=0.4,<0.5"
	touch $(STAMP)

install: $(STAMP)

demo: install
	@if [ -f src/limner/weights/limner-tiny/model_index.json ]; then model=""; \
	else echo "limner-tiny weights not present: using a tiny random model built locally"; \
	  $(BIN)/limner dev tiny-model .cache/tiny-random >/dev/null; model="--model .cache/tiny-random --size 64x64"; fi; \
	$(BIN)/limner generate "$(DEMO_PROMPT)" --seed 7 -n 4 --out output/demo $$model
	@echo "Wrote the PNGs above. Read their parameters back with: $(BIN)/limner info output/demo/<file>.png"

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache output
