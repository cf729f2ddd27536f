# Everything is driven from here. Each target creates the virtual environment and installs what it
# needs when missing, and reinstalls only when pyproject.toml, lite/requirements.txt (or
# package-lock.json) changed.
#
#   make book    build the HTML book, every chapter executed, zero warnings allowed, and the
#                JupyterLite site in it (_build/html/lite; `make book LITE=0` leaves it out)
#   make lite    (re)build only the JupyterLite site: every chapter runs in the browser, offline
#   make pdf     make book, then the whole book as one PDF: _build/pdf/bptt-book.pdf
#   make test    unit tests + every chapter cell executed by nbval, in one pytest run
#   make check   what CI runs: lint (ruff, mypy --strict), test, book, the browser test of the
#                built pages, the PDF, then each chapter run in the browser and the PDF's test
#   make bench   benchmarks (speed and memory)
#   make serve   serve the built book on http://127.0.0.1:8000
#   make clean   remove build output (keeps .venv and node_modules)

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
MATHJAX := _vendor/mathjax/tex-chtml.js
LITE   ?= 1
LITE_DIR := _build/html/lite
PDF    := _build/pdf/bptt-book.pdf
PORT   ?= 8000

export PYDEVD_DISABLE_FILE_VALIDATION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all book lite pdf test check lint format bench browser browser-lite serve clean distclean venv

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml lite/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,cli]" -r lite/requirements.txt
	touch $@

# MathJax and Pyodide are pinned in package.json/package-lock.json (npm ci checks their integrity)
# and served by the book itself: offline math, and Python in the browser.
$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js (apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(MATHJAX): $(NPM_STAMP)
	rm -rf _vendor/mathjax
	mkdir -p _vendor
	cp -r node_modules/mathjax/es5 _vendor/mathjax
	touch $@

book: $(STAMP) $(MATHJAX) $(NPM_STAMP)
	$(BIN)/jupyter-book build . --all --warningiserror --keep-going
ifneq ($(LITE),0)
	$(BIN)/python lite/build.py --out $(LITE_DIR)
endif
	@echo
	@echo "The book is at $(CURDIR)/_build/html/index.html (make serve to browse it)"

# The JupyterLite site alone (make book builds it too). Its downloads are cached in .cache/lite.
lite: $(STAMP) $(NPM_STAMP)
	$(BIN)/python lite/build.py --out $(LITE_DIR)

# The single-page build shares the HTML build's environment: no chapter is executed twice.
pdf: book
	$(BIN)/python lite/pdf.py --out $(PDF)

test: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env -m "not browser" tests book

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The browser test refuses to skip here: it runs after `book`, so the HTML must exist.
browser: $(STAMP)
	BPTT_REQUIRE_HTML=1 $(BIN)/python -m pytest -m browser tests/test_browser.py

# Every chapter run in the browser from the site (tests/test_lite.py), and the PDF's test.
browser-lite: $(STAMP)
	BPTT_REQUIRE_HTML=1 $(BIN)/python -m pytest -m browser tests/test_lite.py tests/test_pdf.py

check: lint test book browser pdf browser-lite

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
	rm -rf $(VENV) node_modules *.egg-info .cache
