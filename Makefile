# Two commands take a fresh clone to a rendered video and a green test run:
#   make demo   -> media/demo.mp4 from scenes/demo.yaml on the built-in face model
#   make test   -> the test suite (fast tests; `make test-slow` for the long ones)
# Each target creates .venv and installs the project into it on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow test-all bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) render.py scenes/demo.yaml -o media/demo.mp4

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/generator.py
	$(PY) bench/render.py
	$(PY) bench/project.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
