# The series' commands. Each target sets up .venv itself (scripts/bootstrap_venv.py) first.
#   make lab    set up, then open JupyterLab on notebooks/ (prints the URL when headless)
#   make test   set up, then ruff + unit tests + every notebook under nbmake in FAST mode
#   make sync   re-pair every notebook with its jupytext .py after an edit
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Workers for pytest-xdist: 2 at most (notebook kernels race for ports beyond that).
JOBS   ?= 2

.PHONY: venv lab test lint sync clean

venv:
	$(PYTHON) scripts/bootstrap_venv.py --venv $(VENV)

# Headless (no DISPLAY): no browser, JupyterLab prints the URL to open. Root (containers): allowed.
lab: venv
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(if $(DISPLAY),,--no-browser) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

lint: venv
	$(VENV)/bin/ruff check .

# FAST budgets, one torch thread per worker, figures into a temp folder (the committed
# figures/ is never touched by a test run).
test: lint
	@figs=$$(mktemp -d) && trap 'rm -rf "$$figs"' EXIT && \
	MBPO_FAST=1 MBPO_FIGURES_DIR="$$figs" OMP_NUM_THREADS=1 \
	$(PY) -m pytest -n $(JOBS) -ra tests notebooks \
		--nbmake --nbmake-kernel=python3 --nbmake-timeout=900 --timeout=1800

sync: venv
	$(VENV)/bin/jupytext --sync notebooks/[0-9]*.py

clean:
	rm -rf build .pytest_cache .ruff_cache
