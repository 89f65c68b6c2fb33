# Margin Maintenance: every target sets up what it needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
STAMPS := .stamps
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export APE_DATA_FOLDER := $(CURDIR)/.ape
export VVM_BINARY_PATH := $(CURDIR)/.vvm
export SILVERBACK_PROFILE_DIR := $(CURDIR)/.silverback
export PYTHONDONTWRITEBYTECODE := 1

# Extra pytest args, e.g. make test ARGS="-k liquidate"
ARGS ?=

.PHONY: setup preflight abi test test-unit test-anvil compile bench bench-quick demo demo-quick simulate simulate-quick fuzz fuzz-machine campaign lint fmt clean lock

setup: $(STAMPS)/venv $(STAMPS)/node

$(STAMPS)/venv: requirements.txt pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

# redis-server (Debian's) for the distributed keeper test: its taskiq broker runs on Redis.
$(STAMPS)/redis:
	@mkdir -p $(STAMPS)
	command -v redis-server || (apt-get update && apt-get install -y redis-server)
	@touch $@

$(STAMPS)/node: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Compile, then refresh the plain ABIs in abi/ (tracked, for bots that do not use Ape). On CI
# (CI=true, set by .ci/run) abi/ is only checked: a commit whose abi/ is stale fails there.
# --force: Ape tracks only the compiled targets, not the modules they import (contracts/modules
# is excluded in ape-config.yaml), so an edited module would otherwise leave a stale build.
ABI_FLAGS := $(if $(filter true 1,$(CI)),--check,)
define compile_all
	ape compile --force
	python -m margin_maintenance.abi $(ABI_FLAGS)
endef

# What make demo needs from the machine itself, checked before the install (a few seconds).
preflight:
	@bash scripts/preflight.sh host

compile: setup
	$(compile_all)

abi: compile

# The invariant campaign (forge's invariant fuzzer over the compiled contracts, fuzz/): a fixed
# seed in CI, CAMPAIGN_STEPS steps; any violation fails the build and is saved as a regression.
CAMPAIGN_STEPS ?= 20000
CAMPAIGN_SEED ?= 0x4d4d
campaign: setup
	$(compile_all)
	python -m margin_maintenance.campaign --steps $(CAMPAIGN_STEPS) --seed $(CAMPAIGN_SEED)

# The whole suite: the bounded campaign first, then the in-process py-evm chain, then the
# integration tests on a real anvil.
test: setup $(STAMPS)/redis
	$(compile_all)
	python -m margin_maintenance.campaign --steps $(CAMPAIGN_STEPS) --seed $(CAMPAIGN_SEED)
	ape test tests -q -n 2 $(ARGS)
	ape test tests -q -m integration --network ethereum:local:foundry $(ARGS)

test-unit: setup
	ape test tests -q $(ARGS)

test-anvil: setup
	ape test tests -q --network ethereum:local:foundry $(ARGS)

# Local anvil, deploy, 200 traders, the keeper as its own process, two real crashes, report.
demo: preflight setup
	$(compile_all)
	bash scripts/demo.sh

# The same with 40 traders and the 30 hours around each crash.
demo-quick: preflight setup
	$(compile_all)
	DEMO_TRADERS=40 DEMO_SKIP=44 DEMO_STEPS=30 bash scripts/demo.sh

# A million steps of the campaign on a new seed (printed; pass FUZZ_SEED=0x.. to replay one),
# its figures in docs/campaign.md.
FUZZ_STEPS ?= 1000000
FUZZ_SEED ?= random
fuzz: setup
	$(compile_all)
	python -m margin_maintenance.campaign --steps $(FUZZ_STEPS) --seed $(FUZZ_SEED) --record fuzz

# The Hypothesis state machine (bit-exact against the Python model) with many more examples
# than CI (MM_FUZZ_EXAMPLES, default 500); prints the examples and steps run and how often each
# action happened.
FUZZ_EXAMPLES ?= 500
fuzz-machine: setup
	$(compile_all)
	MM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) MM_FUZZ_PROGRESS=1 ape test tests/test_invariants.py -q -s

# Every crash file through the real contracts, swept over mm, fee, insurance and keeper latency,
# on signed prices, with the push feed beside them (about 30 minutes; docs/sim/).
simulate: setup
	$(compile_all)
	ape run simulate --oracle pull $(ARGS)

simulate-quick: setup
	$(compile_all)
	ape run simulate --quick --out out/sim-quick

# Gas table (docs/gas.md); keeper scale on anvil at 1,000 and 10,000 accounts, the test-suite
# and demo-quick wall times (docs/bench.md, raw figures in out/bench/). Figures, not asserts.
bench: setup $(STAMPS)/redis
	$(compile_all)
	ape run gas
	python -m margin_maintenance.campaign --steps 200000 --record bench
	ape run scale --accounts 1000,10000 --suite --demo

# CI check that the bench still runs: the gas table and a 200-account scale run (out/bench/).
bench-quick: setup
	$(compile_all)
	ape run gas
	ape run scale --quick

lint: setup
	ruff check .
	ruff format --check .

fmt: setup
	ruff format .
	ruff check --fix .

lock: setup
	$(VENV)/bin/pip freeze --exclude pip --exclude setuptools --exclude wheel > requirements.txt

clean:
	rm -rf .build .cache .pytest_cache .hypothesis $(STAMPS) fuzz/out fuzz/cache fuzz/bytecode fuzz/reports
