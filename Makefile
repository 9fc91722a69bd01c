# The two commands: `make run` and `make test`. Everything they need is installed from here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
STAMP := $(VENV)/.installed

.PHONY: run test install system-deps translations migrate bench lint clean browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) system-deps translations

# The CJK font for PDFs, HarfBuzz's subsetter (WeasyPrint embeds font subsets with it) and
# pdftotext for reading PDFs back, from Debian's packages.
SYSTEM_PACKAGES := fonts-wqy-microhei libharfbuzz-subset0 poppler-utils
system-deps:
	@if ! fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk" || ! command -v pdftotext >/dev/null \
	    || ! ldconfig -p 2>/dev/null | grep -q libharfbuzz-subset; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing $(SYSTEM_PACKAGES)…"; \
	    (apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null)); \
	  else \
	    echo "WARNING: install them for Chinese PDFs: sudo apt-get install $(SYSTEM_PACKAGES)"; \
	  fi; \
	fi

# Chromium, and axe-core (tests/browser/package-lock.json, from the npm registry) with which
# the browser tests check every page; test-only, never served by the portal.
browser-deps:
	@command -v chromium >/dev/null || (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  (apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null))
	@command -v npm >/dev/null || (apt-get install -y -qq npm >/dev/null 2>&1 || \
	  (apt-get update -qq >/dev/null && apt-get install -y -qq npm >/dev/null))
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

translations: $(STAMP)
	$(FLASK) translate compile

migrate: install
	$(FLASK) db upgrade

# The demo is served as production serves it: gunicorn (no reloader, no debugger), two worker
# processes of four threads each, every request logged on the terminal; Ctrl-C stops it.
SERVE := $(BIN)/gunicorn --no-control-socket --workers 2 --worker-class gthread --threads 4 \
	--bind 127.0.0.1:5000 --access-logfile - wsgi:app

run: install
	$(FLASK) setup
	$(FLASK) accounts
	@echo "Serving on http://127.0.0.1:5000"
	$(SERVE)

test: install browser-deps
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 --dist load

lint: $(STAMP)
	$(BIN)/ruff check .

# The load generator of `make bench` (Debian's wrk), then the suite: see bench/run.py.
bench: install
	@command -v wrk >/dev/null || (apt-get install -y -qq wrk >/dev/null 2>&1 || \
	  (apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null)) || \
	  echo "WARNING: install the load generator: sudo apt-get install wrk"
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.imports
	$(BIN)/python -m bench.documents
	$(BIN)/python -m bench.suggest
	$(BIN)/python -m bench.api

clean:
	rm -rf $(VENV) instance *.egg-info
