# Two commands set everything up on a fresh machine: `make lab` and `make test`.
# Both are idempotent: the venv, the package, etcd and the Kubernetes control plane (built once
# from Debian's source, cached in ~/.cache/kcockpit) are installed only when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kcockpit-installed

.PHONY: lab test setup lint screenshots bench

lab: setup
	$(BIN)/kcockpit lab

test: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/mypy tui widgets actions cluster lab
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

setup: $(STAMP)
	@scripts/install-system-deps.sh
	@scripts/install-etcd.sh
	@scripts/install-kubectl.sh
	@scripts/install-kubernetes.sh
	@# Byte-compiled as a wheel install would be: the launch should not compile the sources.
	@$(BIN)/python -m compileall -q tui widgets actions cluster lab > /dev/null

$(STAMP): pyproject.toml
	@scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/mypy tui widgets actions cluster lab

# Regenerates screenshots/*.svg on a lab with a real incident (not run in CI).
screenshots: setup
	$(BIN)/python scripts/screenshots.py

# Prints every performance figure of issue 7 beside its target (not run in CI).
bench: setup
	$(BIN)/python bench/run_all.py --quick
