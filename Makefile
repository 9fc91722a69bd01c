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

# The CJK font for PDFs and pdftotext for reading them back, from Debian's packages.
system-deps:
	@if ! fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk" || ! command -v pdftotext >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing fonts-wqy-microhei and poppler-utils…"; \
	    (apt-get install -y -qq fonts-wqy-microhei poppler-utils >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq fonts-wqy-microhei poppler-utils >/dev/null)); \
	  else \
	    echo "WARNING: install fonts-wqy-microhei and poppler-utils (sudo apt-get install fonts-wqy-microhei poppler-utils) for Chinese PDFs"; \
	  fi; \
	fi

browser-deps:
	@command -v chromium >/dev/null || (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  (apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null))

translations: $(STAMP)
	$(FLASK) translate compile

migrate: install
	$(FLASK) db upgrade

run: install
	$(FLASK) setup
	$(FLASK) accounts
	@echo "Serving on http://127.0.0.1:5000"
	$(FLASK) run --host 127.0.0.1 --port 5000

test: install
	$(BIN)/pytest -n 2 --dist load

lint: $(STAMP)
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) instance *.egg-info
