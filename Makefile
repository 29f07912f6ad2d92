# The commands a person and CI run. `make demo` and `make test` are the README's two
# set-up commands: each creates the virtualenv and installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast lint format bench clean system-deps

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: Hugo for the site-build test, wrk for the load benchmarks,
# Chromium and its WebDriver for the browser tests (tests/test_browser.py). COMMAND:PACKAGE.
SYSTEM_DEPS := hugo:hugo wrk:wrk chromium:chromium chromedriver:chromium-driver
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  command -v $${dep%%:*} >/dev/null || missing="$$missing $${dep#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

demo: install
	$(BIN)/recs build examples/content
	$(BIN)/recs related "https://www.sixthtone.com/news/1009712/chinese-school-faces-backlash-over-use-of-facial-recognition-scanners"

test: install system-deps
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
