# vidflow: `make demo` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo needs the local cloud only; tests add the dev tools, the browser and the notebook SDK.
LOCAL_STAMP := $(VENV)/.installed-local
STAMP := $(VENV)/.installed-dev
NODE_STAMP := tests/node/node_modules/.installed
CONSOLE_STAMP := workflow/cli/console/node_modules/.installed
# checkov pins an older boto3 than moto and sam need, so it lives in a venv of its own.
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(VENV)/checkov/.installed-$(CHECKOV_VERSION)
DEMO_OUT ?= demo-output

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP) $(CHECKOV_STAMP) $(NODE_STAMP) $(CONSOLE_STAMP) /usr/bin/chromium

# Every package at the version the suite passed with (constraints.txt), demo and tests alike.
$(LOCAL_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==26.3
	$(BIN)/pip install --quiet -c constraints.txt -e '.[local]'
	touch $@

$(STAMP): $(LOCAL_STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[local,dev,notebook]'
	touch $@

$(CHECKOV_STAMP): tests/contract/checkov-constraints.txt
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet -c tests/contract/checkov-constraints.txt \
		checkov==$(CHECKOV_VERSION)
	touch $@

$(NODE_STAMP): tests/node/package.json tests/node/package-lock.json
	command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The console's one front-end dependency (hls.js), from the npm registry.
$(CONSOLE_STAMP): workflow/cli/console/package.json workflow/cli/console/package-lock.json
	command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	cd workflow/cli/console && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium: the browser the console's end-to-end tests drive (Playwright).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

demo: $(LOCAL_STAMP)
	$(BIN)/vidflow demo --out $(DEMO_OUT)

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25

test-fast: setup
	$(BIN)/python -m pytest -q tests/unit tests/contract

lint: $(STAMP)
	$(BIN)/ruff check workflow lambdas tests bench
	$(BIN)/ruff format --check workflow lambdas tests bench
	$(BIN)/mypy workflow bench
	for handler in lambdas/*/app.py; do $(BIN)/mypy $$handler || exit 1; done

bench: $(STAMP)
	$(BIN)/python bench/vod_local.py
	$(BIN)/python bench/live_latency.py
	$(BIN)/python bench/live_soak.py --streams 10 --segments 5
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/cloud_model.py
	$(BIN)/python bench/live_model.py

clean:
	rm -rf $(VENV) .cache .aws-sam demo-output .pytest_cache tests/node/node_modules workflow/cli/console/node_modules
