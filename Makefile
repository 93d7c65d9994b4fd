# Neuron: two commands on a fresh machine.  `make demo` runs a simulated district-day through Dagster,
# `make test` runs the test suite.  Both install everything they need (uv + the locked environment).
PYTHON ?= python3
UV_VERSION := 0.13.8
# uv runs as a module of the interpreter that installed it, so no PATH assumptions are needed
UV := $(PYTHON) -m uv
# bytecode is compiled once at install; writing it at run time is often disabled (PYTHONDONTWRITEBYTECODE)

.PHONY: install install-runtime uv demo test ui bench lint layers snapshot clean

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)" \
		|| $(PYTHON) -m pip install --quiet --user "uv==$(UV_VERSION)"

install: uv
	$(UV) sync --frozen --compile-bytecode

# what running Neuron needs, without the test and lint tools (pytest, hypothesis, scipy, ruff, playwright...)
install-runtime: uv
	$(UV) sync --frozen --no-dev --compile-bytecode

demo: install-runtime
	$(UV) run --frozen --no-dev neuron demo $(ARGS)

# the layers contract (import-linter, pyproject.toml) first: an upward import fails the build before any test runs
# two xdist workers on the two cores; the tests that share the simulated session day stay on one worker
test: install layers
	NEURON_MODE=test $(UV) run pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

layers: install
	$(UV) run lint-imports

ui: install-runtime
	NEURON_MODE=$${NEURON_MODE:-demo} $(UV) run --frozen --no-dev neuron ui

# a district-day as one Dagster run (docs/benchmarks.md); psutil, which samples the run's memory, is a dev dependency
bench: install
	NEURON_MODE=$${NEURON_MODE:-demo} $(UV) run --frozen python bench/district_day.py $(ARGS)

lint: install
	$(UV) run ruff check .

clean:
	rm -rf data .pytest_cache

# rewrite the graph snapshot after an intended graph change (review the diff of tests/pipelines/__snapshots__/)
snapshot: install
	NEURON_MODE=test $(UV) run pytest tests/pipelines/test_graph_snapshot.py --snapshot-update
