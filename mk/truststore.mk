# Truststore targets. The main Makefile includes this file and defines
# PYTHON (the virtualenv's interpreter).

TRUSTSTORE_BUNDLE ?= truststore/skribble-truststore.pem
TRUSTSTORE_KEY ?= skribble-truststore.pem
TRUSTSTORE_MIN_DAYS ?= 30

.PHONY: truststore-check truststore

# Check the bundle the way API Gateway does, and stricter.
truststore-check: venv
	$(PYTHON) -m tools.truststore check $(TRUSTSTORE_BUNDLE) --min-days $(TRUSTSTORE_MIN_DAYS)

# Check, upload to a versioned bucket and print the TruststoreVersion.
truststore: venv
	@test -n "$(TRUSTSTORE_BUCKET)" || { echo "set TRUSTSTORE_BUCKET to the versioned S3 bucket of the truststore" >&2; exit 2; }
	$(PYTHON) -m tools.truststore upload $(TRUSTSTORE_BUNDLE) --min-days $(TRUSTSTORE_MIN_DAYS) --bucket $(TRUSTSTORE_BUCKET) --key $(TRUSTSTORE_KEY)
