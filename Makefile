# riverflink developer commands. `make setup` is idempotent; demo/test/bench depend on it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test unit integration bench lint clean cluster-start cluster-stop

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@# the Java router (needs javac) and the JVM class archive: local runs start faster
	$(BIN)/riverflink warm-up || echo "riverflink: no class archive; runs start the slow way"
	touch $(STAMP)

demo: setup
	$(BIN)/python -m riverflink.cli.demo

test: setup
	$(BIN)/python -m pytest -q

unit: setup
	$(BIN)/python -m pytest -q -m "not integration"

integration: setup
	$(BIN)/python -m pytest -q -m integration

bench: setup
	$(BIN)/python -m benchmarks.throughput --repeat 3
	$(BIN)/python -m benchmarks.million

lint: setup
	$(BIN)/ruff check .

# A local standalone Flink cluster (web UI http://localhost:8081); see README.
cluster-start: setup
	$(BIN)/riverflink cluster start

cluster-stop: setup
	$(BIN)/riverflink cluster stop

clean:
	rm -rf $(VENV) out .pytest_cache
