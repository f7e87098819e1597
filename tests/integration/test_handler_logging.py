"""Log lines of the callback handler carry only the current request's ids."""

from __future__ import annotations

import io
import json
import logging
import os
from unittest import mock

from local.pki import make_leaf
from local.template import Template
from skribble_receiver.observability import logger
from tests.integration.conftest import LambdaContext
from tests.integration.test_handler_events import load_handler
from tests.support.callbacks import DOC, SR, path_delivery

OTHER_SR = "00000000-0000-4000-8000-000000000002"


def test_rejection_after_success_logs_no_earlier_ids(stack, skribble_chain):
    template = Template(resource_names=stack.as_resource_names())
    [spec] = [
        item for item in template.functions() if item.logical_id == "SuccessFunction"
    ]
    environment = {**spec.environment, "POWERTOOLS_TRACE_DISABLED": "true"}
    handler = load_handler(spec.code_uri, spec.handler, environment, "logging")
    accepted = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)
    stranger = make_leaf(skribble_chain.intermediate, "attacker.example")
    rejected = path_delivery("SUCCESS", [OTHER_SR, DOC], stranger)
    output = io.StringIO()

    with mock.patch.dict(os.environ, environment):
        handler(accepted, LambdaContext())
        # Powertools' log handler keeps the stream it was created with.
        log_handler = logger.registered_handler
        assert isinstance(log_handler, logging.StreamHandler)
        previous = log_handler.setStream(output)
        try:
            handler(rejected, LambdaContext())
        finally:
            log_handler.setStream(previous)

    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    [rejection] = [line for line in lines if line["message"] == "Callback rejected"]
    assert rejection["reason"] == "certificate_host_not_allowed"
    assert "signature_request_id" not in rejection
    assert "callback_id" not in rejection
