# The one entry point for development, tests and CI. Every target installs
# what it needs into .venv first, so each works on a fresh clone.

PYTHON_BOOTSTRAP ?= python3.13
VENV := .venv
PYTHON := $(VENV)/bin/python
SAM := $(VENV)/bin/sam
export PYTHONPATH := layers/receiver:functions/callback:.
# SAM CLI would otherwise send usage data to AWS on every command.
export SAM_CLI_TELEMETRY := 0

.PHONY: venv lint format test unit integration validate build ci clean

$(VENV)/.installed: requirements/dev.txt requirements/constraints.txt
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check \
		-r requirements/dev.txt -c requirements/constraints.txt
	touch $@

venv: $(VENV)/.installed

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy layers local tools tests
	$(PYTHON) -m tools.event_schemas --check

unit: venv
	$(VENV)/bin/pytest tests/unit

integration: venv
	$(VENV)/bin/pytest tests/integration

validate: venv
	$(SAM) validate --lint

build: venv
	$(SAM) build --parameter-overrides Architecture=x86_64

# What CI runs: the README's test command. invoke-test runs `sam build` and
# then the built functions in containers (see mk/invoke.mk).
test: lint validate
	$(VENV)/bin/pytest tests -m "not container"
	$(MAKE) invoke-test

ci: test

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache

include mk/*.mk
