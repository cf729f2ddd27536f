# Everything is driven from here. Each target creates the virtual environment and installs what it
# needs when missing, and reinstalls only when pyproject.toml (or package-lock.json) changed.
#
#   make book    build the HTML book, every chapter executed, zero warnings allowed
#   make test    unit tests + every chapter cell executed by nbval, in one pytest run
#   make check   what CI runs: lint, test, book, then the browser test of the built pages
#   make bench   benchmarks (speed and memory)
#   make serve   serve the built book on http://127.0.0.1:8000
#   make clean   remove build output (keeps .venv and node_modules)

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX := _vendor/mathjax/tex-chtml.js
PORT   ?= 8000

export PYDEVD_DISABLE_FILE_VALIDATION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all book test check lint format bench browser serve clean distclean venv

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,cli]"
	touch $@

# MathJax is pinned in package.json/package-lock.json and served by the book itself (offline math).
node_modules/mathjax/es5/tex-chtml.js: package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js (apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(MATHJAX): node_modules/mathjax/es5/tex-chtml.js
	rm -rf _vendor/mathjax
	mkdir -p _vendor
	cp -r node_modules/mathjax/es5 _vendor/mathjax
	touch $@

book: $(STAMP) $(MATHJAX)
	$(BIN)/jupyter-book build . --all --warningiserror --keep-going
	@echo
	@echo "The book is at $(CURDIR)/_build/html/index.html (make serve to browse it)"

test: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -m "not browser" tests book

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The browser test refuses to skip here: it runs after `book`, so the HTML must exist.
browser: $(STAMP)
	BPTT_REQUIRE_HTML=1 $(BIN)/python -m pytest -m browser tests/test_browser.py

check: lint test book browser

bench: $(STAMP)
	$(BIN)/python -m benchmarks

serve:
	@test -f _build/html/index.html || { echo "error: no built book; run make book first"; exit 1; }
	@echo "Serving the book at http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"
	$(or $(wildcard $(BIN)/python),$(PYTHON)) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

clean:
	rm -rf _build _vendor .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path "./.venv/*" -not -path "./node_modules/*" -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules *.egg-info
