# The one entry point for development, tests and CI.
PYTHON ?= .venv/bin/python
export PYTHONPATH := layers/receiver:functions/callback:.

include mk/truststore.mk
