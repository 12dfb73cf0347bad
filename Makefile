# The README commands: `make run` (embedded Zhida), `make test` (the whole suite), `make test-fast` (the inner loop).
PY ?= python3
VENV := .venv
# The suite runs in two processes (one per core): most tests wait on a Temporal server, a browser or a socket, so
# two halves overlap well. Files stay whole on one process (module-scoped stacks are built once). TEST_WORKERS=0
# runs everything in this process.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/zhida run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	bash scripts/ensure-browser.sh
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The inner loop: no Temporal server, browser or loopback server (marks set in tests/conftest.py).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(XDIST) -m "not e2e and not browser and not servers" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf data reports .pytest_cache
