# Neuron: two commands on a fresh machine.  `make demo` runs a simulated district-day through Dagster,
# `make test` runs the test suite.  Both install everything they need (uv + the locked environment).
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(HOME)/.local/bin/uv
endif

.PHONY: install demo test ui bench lint clean

$(UV):
	$(PYTHON) -m pip install --quiet --user "uv==$(UV_VERSION)" || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"

install: $(UV)
	$(UV) sync --frozen --compile-bytecode

demo: install
	NEURON_MODE=$${NEURON_MODE:-demo} $(UV) run neuron demo $(ARGS)

test: install
	NEURON_MODE=test $(UV) run pytest $(PYTEST_ARGS)

ui: install
	NEURON_MODE=$${NEURON_MODE:-demo} $(UV) run neuron ui

bench: install
	NEURON_MODE=$${NEURON_MODE:-demo} $(UV) run python bench/telemetry_ingest.py $(ARGS)

lint: install
	$(UV) run ruff check .

clean:
	rm -rf data .pytest_cache
