# Audit targets. The main Makefile includes this file and defines PYTHON.
# Settings come from the audit's environment variables (TABLE_NAME,
# EVENT_BUS_NAME, SKRIBBLE_API_BASE_URL, ...), as for the function. When
# they are not set and `make dev` is running, its .local/audit.env is used.

.PHONY: audit

# Run the audit once, e.g. make audit ARGS="--since 2h" or
# make audit ARGS="--signature-request 4f43614a-de50-bfe1-2df3-4c881fc7840e".
audit: venv
	@test -n "$(ARGS)" || { echo 'set ARGS, e.g. ARGS="--since 2h" or ARGS="--signature-request ID"' >&2; exit 2; }
	@if [ -z "$$TABLE_NAME" ] && [ -f .local/audit.env ]; then \
		set -a; . ./.local/audit.env; set +a; \
	fi; \
	$(PYTHON) -m tools.audit $(ARGS)
