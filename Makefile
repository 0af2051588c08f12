# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: venv demo test test-all lint bench eval clean

venv: $(STAMP)

# The constraints file pins the tested torch (a CPU wheel here); pyproject keeps torch>=2.4.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lineage demo --out demo-out

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: $(STAMP)
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
