# Every target installs first when .venv is missing or older than pyproject.toml, so
# `make demo` and `make test` each work alone on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch/torchvision are pinned to the builds that lie on this machine's disk (a CUDA build that
# also runs on CPU); pyproject only says torch>=2.4 so other machines may use their own.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install test test-all demo bench lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH_PINS)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

demo: $(STAMP)
	bash scripts/demo.sh

bench: $(STAMP)
	$(PY) -m bench.run --out bench-out

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf demo-out bench-out .pytest_cache
