# The series' commands. Each target sets up .venv itself (scripts/bootstrap_venv.py) first.
#   make lab    set up, then open JupyterLab on notebooks/ (prints the URL when headless)
#   make test   set up, then ruff + unit tests + every notebook under nbmake in FAST mode
#   make sync   re-pair every notebook with its jupytext .py after an edit
#   make slides execute every notebook into build/ and export offline reveal.js decks to
#               build/slides/ and build/mbpo-slides.zip (full budgets; MBPO_FAST=1 for a quick
#               deck; NB="03 05" for some notebooks only)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Workers for pytest-xdist: 2 at most (notebook kernels race for ports beyond that).
JOBS   ?= 2

.PHONY: venv lab test lint sync slides clean bench

venv:
	$(PYTHON) scripts/bootstrap_venv.py --venv $(VENV)

# Headless (no DISPLAY): no browser, JupyterLab prints the URL to open. Root (containers): allowed.
lab: venv
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(if $(DISPLAY),,--no-browser) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

lint: venv
	$(VENV)/bin/ruff check .

# FAST budgets, one torch thread per worker, figures into a temp folder (the committed
# figures/ is never touched by a test run). Three runs, one after the other: the unit tests on
# $(JOBS) workers; the notebooks under nbmake one kernel at a time; the browser tests (the widgets
# in Voila and JupyterLab, the slide decks). Every kernel of a test run talks over IPC (Unix
# sockets; the root conftest.py and tests/browser/jupyter_servers.py): over TCP a kernel's ports
# are picked, released and bound again, and a kernel whose port was taken in between hung the
# suite. The notebooks still run one at a time, as each kernel uses a core.
test: lint
	@figs=$$(mktemp -d) && trap 'rm -rf "$$figs"' EXIT && \
	export MBPO_FAST=1 MBPO_FIGURES_DIR="$$figs" OMP_NUM_THREADS=1 && \
	$(PY) -m pytest -n $(JOBS) -ra tests --ignore=tests/browser --timeout=1800 && \
	$(PY) -m pytest -p no:xdist -ra notebooks --nbmake --nbmake-kernel=python3 --nbmake-timeout=900 \
		--timeout=1800 && \
	$(PY) -m pytest -ra tests/browser --timeout=900

sync: venv
	$(VENV)/bin/jupytext --sync notebooks/[0-9]*.py

# Lecture decks (scripts/build_slides.py): reveal.js, MathJax, require.js and jQuery come from the
# npm registry into build/ (npm needed), so a deck opens from file:// with no network.
NB ?=
slides: venv
	$(PY) scripts/build_slides.py $(NB)

# The benchmarks: the dynamics model against mbrl-lib 0.2.0 and SAC's update against
# stable-baselines3 (the bench extra), each measured in the same run. mbrl pins an
# old gymnasium and hydra, so it is no extra of ours: it goes into .venv without its dependencies,
# beside the few packages its model code imports (versions that install on Python 3.11).
bench: venv
	$(PY) -m pip install --progress-bar off "hydra-core==1.3.2" "omegaconf==2.3.0" "termcolor>=1.1"
	$(PY) -m pip install --progress-bar off --no-deps "mbrl==0.2.0"
	$(PY) -m pip install --progress-bar off -e ".[bench]"
	$(PY) benchmarks/bench_ensemble.py
	$(PY) benchmarks/bench_sac.py

clean:
	rm -rf build .pytest_cache .ruff_cache
