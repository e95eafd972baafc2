# `make train` and `make test` are all a fresh clone needs: each creates .venv when missing and
# (re)installs the package, editable with the dev extra, only when setup.cfg changed since.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-setup.cfg
PYTEST_ARGS ?=
# `make test` spreads the tests over this many pytest-xdist workers (one torch thread each).
TEST_WORKERS ?= 2

.PHONY: train test test-unit test-all check format plot clean browser demo

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade "pip>=23.1"
	$(PY) -m pip install --quiet --editable ".[dev]"
	touch $(STAMP)

train: $(STAMP)  ## default training run; extra Hydra overrides: make train ARGS="trainer.max_epochs=1"
	$(PY) train.py $(ARGS)

# Debian's chromium and its driver, for the demo page's browser test (tests/test_demo.py); root
# or passwordless sudo installs them, otherwise that one test skips and says why.
APT = $(shell [ "$$(id -u)" = 0 ] && echo apt-get || (sudo -n true 2>/dev/null && echo "sudo -n apt-get"))

browser:  ## install chromium + chromedriver (Debian packages) when missing
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ -z "$(APT)" ]; then echo "note: no chromium and no root to install it; the browser test skips"; \
	else export DEBIAN_FRONTEND=noninteractive; \
	  $(APT) install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { $(APT) update -q >/dev/null 2>&1 && $(APT) install -y -q chromium chromium-driver >/dev/null 2>&1; } || \
	  echo "note: installing chromium failed; the browser test skips"; fi

demo: $(STAMP)  ## serve the demo page: make demo ARGS="--translator CKPT --index DIR"
	$(PY) app.py $(ARGS)

test: $(STAMP) browser  ## all but `slow`: unit, DDP, resume, and real-data tests when ../shared/data is there; prints the 20 slowest
	$(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadgroup --durations=20 $(PYTEST_ARGS)

test-unit: $(STAMP)  ## the fast tier: no translator/DeViSE fitting, DDP, slow or real-data tests
	$(PY) -m pytest -m "not slow and not train and not ddp and not realdata" $(PYTEST_ARGS)

test-all: $(STAMP)  ## everything, slow and real-data (../shared/data) tests included
	$(PY) -m pytest $(PYTEST_ARGS)

check: $(STAMP)  ## lint and format check with the [tool.ruff] settings of pyproject.toml
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

plot: $(STAMP)  ## redraw the schedules figure the README shows
	$(PY) -m callbacks.plot --out callbacks/schedules.png

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
