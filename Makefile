# Two commands on a fresh machine with Python 3.11 and make:
#   make run    set up .venv, migrate, deploy bpmn/ and forms/, serve http://127.0.0.1:8080/engine-rest
#   make test   set up .venv and run the whole test suite (SQLite, and PostgreSQL when reachable)
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# test processes (pytest-xdist); 0 runs the suite in this one
PYTEST_WORKERS ?= 2

.PHONY: run test venv dev bench demo clean

$(BIN)/python:
	$(PY) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11 or newer is needed"'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

venv: $(VENV)/.runtime

dev: $(VENV)/.dev

run: venv
	$(BIN)/python app.py run

test: dev
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: dev
	$(BIN)/python bench/run_all.py

demo: venv
	$(BIN)/python app.py demo

clean:
	rm -rf $(VENV) instance/*.db .pytest_cache
