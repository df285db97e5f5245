# Kiban: every target installs what it needs. `make demo`, `make test`, `make lint`, `make bench`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KIBAN := $(VENV)/bin/kiban
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_RESIDENTS ?= 3000

.PHONY: install demo serve test test-fast lint bench chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads one).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# axe-core (MPL-2.0) for the accessibility browser tests is committed in tests/e2e/vendor, so
# tests need no npm; `make axe [AXE_VERSION=4.x.y]` refreshes it from the npm registry.
AXE_VERSION ?= 4.14.1
.PHONY: axe
axe:
	rm -rf var/npm-axe && mkdir -p var/npm-axe
	cd var/npm-axe && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && tar xzf axe-core-$(AXE_VERSION).tgz
	cp var/npm-axe/package/axe.min.js tests/e2e/vendor/axe.min.js
	cp var/npm-axe/package/LICENSE tests/e2e/vendor/axe-core.LICENSE
	cp var/npm-axe/package/LICENSE-3RD-PARTY.txt tests/e2e/vendor/axe-core.LICENSE-3RD-PARTY.txt
	sha256sum tests/e2e/vendor/axe.min.js
	@echo "axe-core $(AXE_VERSION) vendored: update the version and sha256 in tests/e2e/vendor/README.md"

demo: install
	rm -f var/kiban.db var/kiban.db-wal var/kiban.db-shm
	$(KIBAN) db upgrade
	$(KIBAN) demo seed --residents $(DEMO_RESIDENTS)
	$(KIBAN) serve --host $(HOST) --port $(PORT)

serve: install
	$(KIBAN) db upgrade
	$(KIBAN) serve --host $(HOST) --port $(PORT)

test: install chromium
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: install
	$(PY) -m pytest -n 2 --dist loadfile -m "not e2e"

lint: install
	$(VENV)/bin/ruff check src tests benchmarks migrations
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports
	$(KIBAN) standard lint

# wrk (Debian's) drives the HTTP figure 4c; without it the benchmark skips that figure.
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq wrk >/dev/null) || echo "wrk not installed: figure 4c is skipped"
	$(PY) benchmarks/registry.py
	$(PY) benchmarks/standard.py
	$(PY) benchmarks/identity.py
	$(PY) benchmarks/opendata.py
	$(PY) benchmarks/linkage.py
	$(PY) benchmarks/tax.py
	$(PY) benchmarks/tax_assess.py
	$(PY) benchmarks/privacy.py
	$(PY) benchmarks/assist.py
	$(PY) benchmarks/procedures.py

clean:
	rm -rf $(VENV) var/*.db* .pytest_cache .mypy_cache .ruff_cache
