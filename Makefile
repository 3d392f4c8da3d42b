# Two commands do all the set-up on a fresh machine (Python >= 3.10 with venv and pip):
#   make demo   -- the main job: the quick study (3.5-7.5 minutes on 2 CPU cores: bf16 where native)
#   make test   -- the whole test suite
#   make docs   -- the documentation site, built into site/ (mkdocs --strict: a broken reference fails)
# Both create or update the virtual environment in .venv first; a second run reuses it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.detinit-installed
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test docs data venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -e ".[test,docs]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/detinit study --config configs/studies/quick.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

data: $(STAMP)
	$(BIN)/detinit fetch

clean-venv:
	rm -rf $(VENV)
