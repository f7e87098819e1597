# `sam local invoke` of the built functions in containers, offline. The main
# Makefile includes this file and defines VENV, PYTHON and SAM.

BUILT_TEMPLATE := .aws-sam/build/template.yaml

.PHONY: invoke-test

# Runs `sam build` for x86_64 (the build prerequisite), starts a Docker engine
# and builds the Lambda base image stand-in when they are missing (both need
# root the first time), then invokes every function against moto and the
# Skribble simulator on 127.0.0.1.
invoke-test: build
	scripts/docker-engine.sh
	scripts/lambda-base-image.sh
	@# SAM CLI builds a new image on every invoke and leaves the replaced one
	@# untagged. The label comes from the stand-in base image, so this removes
	@# only untagged images built on it.
	docker image prune --force --filter label=skribble-callbacks.lambda-base.recipe-sha256
	SAM_BUILT_TEMPLATE=$(BUILT_TEMPLATE) $(VENV)/bin/pytest tests/container -m container
