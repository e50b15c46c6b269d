# Two commands for a newcomer: `make demo` and `make test`. Both create the virtual
# environment from the committed lock file when it is missing or older than the lock.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test system-deps lint typecheck bench lock clean

$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

demo: $(BIN)/.installed
	$(BIN)/greenguard demo $(ARGS)

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# The Debian packages some tests need (Mosquitto, Chromium, PostgreSQL, VictoriaMetrics,
# poppler-utils, ...); without them those tests skip, and CI (.ci/run) installs them all.
system-deps:
	.ci/system-deps

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# Benchmarks print ratios against raw ceilings measured in the same run (docs/benchmarks.md);
# ingest_e2e needs Debian's mosquitto-clients. figures_year builds a 16 GiB year of 1-minute
# samples in a temporary directory (about half an hour); `python -m bench.figures_year
# --small` is the quick run.
bench: $(BIN)/.installed
	$(BIN)/python -m bench.store_ingest
	$(BIN)/python -m bench.edge_poll
	$(BIN)/python -m bench.ingest_e2e
	$(BIN)/python -m bench.compliance_ytd
	$(BIN)/python -m bench.figures_year

# Upgrade on purpose: regenerate the lock from pyproject.toml.
lock: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info .greenguard
