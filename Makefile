# hotport: every target bootstraps its own tools from the lock file.
# Needs only python3 (>= 3.11) on the PATH; uv itself is installed into .tools/.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
export UV_PYTHON_DOWNLOADS := never
RUN    := $(UV) run --frozen --no-sync
# optional extras, e.g. EXTRAS="--extra libvirt" on a libvirt host (CI sets it)
EXTRAS ?=

.PHONY: demo test lint typecheck unit sync clean sim

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

sync: $(UV)
	$(UV) sync --frozen $(EXTRAS)

## demo: the simulator and the service in this process: a VM with 10 ports, one attach and
## one detach through the API, measured per cache policy (`hotport demo`; DEMO_ARGS="--help")
demo: sync
	.venv/bin/hotport demo $(DEMO_ARGS)

## test: lint, type-check and the whole test suite
test: sync lint typecheck
	$(RUN) pytest $(PYTEST_ARGS)

## bench-quick: `hotport bench --quick`, every scenario small and fast (CI runs it so that
## the benchmark cannot rot; timings are not judged); BENCH_ARGS="--json out.json" etc.
.PHONY: bench-quick
bench-quick: sync
	.venv/bin/hotport bench --quick $(BENCH_ARGS)

lint: sync
	$(RUN) ruff check src tests
	$(RUN) ruff format --check src tests

typecheck: sync
	$(RUN) mypy

unit: sync
	$(RUN) pytest tests/unit $(PYTEST_ARGS)

clean:
	rm -rf $(TOOLS) .venv .pytest_cache .mypy_cache .ruff_cache
