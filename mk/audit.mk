# Audit targets. The main Makefile includes this file and defines PYTHON.
# Settings come from the audit's environment variables (TABLE_NAME,
# EVENT_BUS_NAME, SKRIBBLE_API_BASE_URL, ...), as for the function.

.PHONY: audit

# Run the audit once, e.g. make audit ARGS="--since 2h" or
# make audit ARGS="--signature-request 4f43614a-de50-bfe1-2df3-4c881fc7840e".
audit: venv
	@test -n "$(ARGS)" || { echo 'set ARGS, e.g. ARGS="--since 2h" or ARGS="--signature-request ID"' >&2; exit 2; }
	$(PYTHON) -m tools.audit $(ARGS)
