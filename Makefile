# Each target makes .venv when it is missing (or when pyproject.toml changed) and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= test,examples,dev,interop
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: help venv test demo lint bench docs clean

help:
	@echo "make demo   run the main job: train the tutorial network on the digits, draw its graph, check its gradients"
	@echo "make test   run the test suite"
	@echo "make lint   ruff over the code"
	@echo "make bench  the speed comparisons in benchmarks/"
	@echo "make docs   build the documentation site"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/tinygrad-nn demo

bench:
	$(MAKE) venv EXTRAS=test,examples,dev,bench
	$(BIN)/python benchmarks/run_all.py

# The site goes to site/; --strict turns every warning (a broken link, a missing page or reference) into an error.
docs:
	$(MAKE) venv EXTRAS=test,examples,dev,docs
	$(BIN)/python scripts/make_doc_images.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache site
