# Junction: `make run` serves the app locally with a demo scenario; `make test` runs every test.
# Both install what they need: a virtual environment (.venv), Python packages and Azurite (npm).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
INFRA_STAMP := .venv-infra/.installed
PYTEST_ARGS ?=

.PHONY: run test bench fuzz load lint deps clean console-vendor browser

deps: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(INFRA_STAMP): requirements-infra.txt
	$(PYTHON) -m venv .venv-infra
	.venv-infra/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

local.settings.json:
	cp local.settings.example.json $@

run: deps local.settings.json
	$(PY) -m cli.demo

test: deps $(INFRA_STAMP) browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The console's browser tests drive Debian's Chromium with its chromedriver (tests/e2e/test_console.py
# and tests/e2e/test_console_aad.py, through tests/support/browser.py).
# Installed here when missing and make runs as root (CI); otherwise make says what to install.
BROWSER_PACKAGES := chromium chromium-driver
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing $(BROWSER_PACKAGES) for the console's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	else \
		echo "The console's browser tests need Chromium and chromedriver. Install them with:" >&2; \
		echo "  sudo apt-get install -y $(BROWSER_PACKAGES)" >&2; \
		exit 1; \
	fi

# Copy the pinned MSAL.js (package.json) into console/vendor, where the app serves it from.
# tests/unit/test_console.py fails when the committed copy differs from the pinned package.
console-vendor: $(NODE_STAMP)
	cp node_modules/@azure/msal-browser/lib/msal-browser.min.js console/vendor/msal-browser.min.js
	cp node_modules/@azure/msal-browser/LICENSE console/vendor/msal-browser.LICENSE.txt

bench: deps
	$(PY) -m bench

# 10,000 Accepts at 16 clients through devhost, every run checked (about 10 minutes here).
load: deps
	$(PY) -m bench.load --requests 10000

# The long fuzzing run: many more examples per operation than make test's bounded one.
fuzz: deps
	JUNCTION_FUZZ_EXAMPLES=$${JUNCTION_FUZZ_EXAMPLES:-150} $(PY) -m pytest -q tests/e2e/test_fuzz.py

lint: deps
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .venv-infra node_modules .azurite .pytest_cache
