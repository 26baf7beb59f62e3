# Two commands on a fresh machine: `make play` and `make test`. Each creates .venv when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
# torch first, pinned: on these machines 2.13.0 is a local CPU build; an unpinned torch would pull CUDA.
TORCH ?= torch==2.13.0

.PHONY: play test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check '$(TORCH)'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

## play: fullscreen where there is a display, else a 10 s headless demo render to noclip-demo.mp4
play: $(STAMP)
	$(BIN)/noclip play $(ARGS)

## test: the whole suite (real GL through EGL, real UDP, a real window under Xvfb when installed)
test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/noclip bench $(ARGS)

## lint: ruff over the code and tests, mypy over the code ([tool.mypy] in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check instrument tests
	$(BIN)/mypy instrument

clean:
	rm -rf $(VENV) build dist *.egg-info
