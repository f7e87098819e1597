# `sam local invoke` of the built functions in containers, offline. The main
# Makefile includes this file and defines VENV, PYTHON and SAM.

BUILT_TEMPLATE := .aws-sam/build/template.yaml

.PHONY: invoke-test

# Starts a Docker engine and builds the Lambda base image stand-in when they
# are missing (both need root the first time), runs `sam build` for x86_64,
# then invokes every function against moto on 127.0.0.1.
invoke-test: build
	scripts/docker-engine.sh
	scripts/lambda-base-image.sh
	SAM_BUILT_TEMPLATE=$(BUILT_TEMPLATE) $(VENV)/bin/pytest tests/container -m container
