# Set-up and the two everyday commands. `make test` and `make bench` create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PREFECT_HOME ?= $(CURDIR)/.prefect
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo test web bench-gef bench-pbi clean

$(BIN)/e2t-al: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0   # the local CPU build; never let a resolver pick a CUDA torch
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/e2t-al

# The main job: a whole simulated campaign (HOIP, Ge-F unexplored) on an embedded SQLite store, Prefect ephemeral mode.
demo: install
	$(BIN)/e2t-al demo

# The store tests also run on PostgreSQL: .ci/postgres.sh installs (Debian packages) and starts a throw-away server
# on 127.0.0.1 unless E2T_AL_TEST_POSTGRES_URL already names one; where it cannot, those tests skip and say why.
# The browser tests drive Debian's chromium (.ci/chromium.sh installs it with apt when it is missing).
test: install
	@bash .ci/chromium.sh >&2
	@if [ -z "$${E2T_AL_TEST_POSTGRES_URL:-}" ]; then eval "$$(bash .ci/postgres.sh)"; fi; \
	$(BIN)/python -m pytest -q

# The lab web app on http://127.0.0.1:8000/ over $$E2T_AL_DATABASE_URL (add a user first: e2t-al users add NAME --role admin).
web: install
	$(BIN)/e2t-al web

bench-gef: install
	$(BIN)/e2t-al bench extrapolation --dataset hoip --target band_gap_GGA --holdout Ge-F --seeds 5 --json reports/extrapolation_hoip_GeF.json

bench-pbi: install
	$(BIN)/e2t-al bench extrapolation --dataset hoip --target band_gap_GGA --holdout Pb-I --seeds 5 --json reports/extrapolation_hoip_PbI.json

clean:
	rm -rf $(VENV) .pytest_cache .prefect reports
