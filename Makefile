# Two commands a newcomer needs:  make demo  (the nightly pipeline, end to end)  and  make test.
# Everything else is installed by these targets from the pinned requirements.lock.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_VERSION := 0.13.9
DATE   ?=
SCALE  ?= small
BENCH_ARGS ?=

.PHONY: system-deps install demo test test-fast lint evaluate dashboard bench soak lock clean-state help

help:
	@echo "make demo       run the nightly pipeline once on the demo company (embedded PostgreSQL)"
	@echo "make test       install and run the whole test suite (what CI runs)"
	@echo "make evaluate   score the published marts against the demo's hidden truth"
	@echo "make dashboard  serve the leadership dashboard on localhost"
	@echo "make bench SCALE=small|medium|large [BENCH_ARGS=...]   benchmarks → BENCHMARKS.md, bench/results/latest.json"

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (first time: a few minutes)…"
	@$(BIN)/python -m pip install -q "uv==$(UV_VERSION)" || true
	@if [ -x $(BIN)/uv ]; then \
		$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock && \
		$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . ; \
	else \
		$(BIN)/python -m pip install -q -r requirements.lock && \
		$(BIN)/python -m pip install -q --no-deps -e . ; \
	fi
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/cw demo $(if $(DATE),--date $(DATE),)

# Debian packages some tests use: docker-compose (static check of docker-compose.yml) and chromium
# (dashboard browser test). Installed when running as root; otherwise those tests skip, saying why.
system-deps:
	@missing=""; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian packages:$$missing"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
				|| echo "warning: could not install$$missing; the tests that need them will skip"; \
		else echo "note:$$missing missing and not root; the tests that need them will skip"; fi; \
	fi

test: install system-deps
	$(BIN)/ruff check plugins dags tests bench
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser" -x

lint: install
	$(BIN)/ruff check plugins dags tests bench

evaluate: install
	@mkdir -p .artifacts
	$(BIN)/python -m customer_warehouse.demo evaluate --truth .demo/demo-seed42/truth --json .artifacts/evaluation.json

dashboard: install
	$(BIN)/python -m customer_warehouse.serving

bench: install
	$(BIN)/python -m bench --scale $(SCALE) $(BENCH_ARGS)

soak: install
	$(BIN)/python -m pytest -q tests/reliability -m soak --soak

lock:
	$(BIN)/uv pip compile --python-version 3.11 requirements.in -o requirements.lock

clean-state:
	rm -rf .warehouse .airflow .demo .artifacts
