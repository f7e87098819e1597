# Local stack targets. The main Makefile includes this file and defines
# PYTHON (the virtualenv's interpreter) and PYTHONPATH.

# Ports of the local stack; 0 picks a free port on 127.0.0.1.
GATEWAY_PORT ?= 0
ADMIN_PORT ?= 0
SIMULATOR_PORT ?= 0
MOTO_PORT ?= 0
# Simulated seconds per real second for Skribble's retry schedule.
TIME_SCALE ?= 60
# 1 pins the current and the next local client certificate, so that
# `make rotation-rehearsal` rehearses a rotation with pins; 0 turns pins off.
PIN_CLIENT_CERTS ?= 1

.PHONY: dev demo e2e

# Run the receiver locally with mutual TLS, moto and the Skribble simulator.
dev: venv
	$(PYTHON) -m local.stack --gateway-port $(GATEWAY_PORT) --admin-port $(ADMIN_PORT) \
		--simulator-port $(SIMULATOR_PORT) --moto-port $(MOTO_PORT) --time-scale $(TIME_SCALE) \
		$(if $(filter 1,$(PIN_CLIENT_CERTS)),--pin-client-certificates)

# Demo scenarios: all, delivery or outage (Skribble gives up, the audit recovers).
SCENARIO ?= all

# Run the demo scenarios against the stack that `make dev` runs.
demo: venv
	$(PYTHON) -m local.demo --scenario $(SCENARIO)

# End-to-end tests over real sockets; each run starts its own stack.
e2e: venv
	$(VENV)/bin/pytest tests/e2e -m e2e
