# Certificate rotation rehearsal. The main Makefile includes this file and
# defines PYTHON (the virtualenv's interpreter) and PYTHONPATH.

# clientAuth, or serverAuth to rehearse a successor without clientAuth, whose
# mutual TLS handshake the local gateway rejects.
NEXT_EKU ?= clientAuth

.PHONY: rotation-rehearsal

# Switch the simulator of the running `make dev` stack to the next client
# certificate between callbacks; exits 1 when any callback was rejected.
rotation-rehearsal: venv
	$(PYTHON) -m local.rotation --next-eku $(NEXT_EKU)
