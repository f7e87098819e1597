"""Each function's handler answers its sample event from events/.

The handler module is loaded the way Lambda loads it: from the function's
CodeUri, with the environment template.yaml gives that function.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from unittest import mock

import pytest

from local.template import Template
from tests.integration.conftest import LambdaContext
from tests.support.callbacks import callback_records, published_events

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_NAMES = {"CallbacksTable": "table", "EventBus": "bus"}
CALLBACK_FUNCTIONS = [
    spec
    for spec in Template(resource_names=PLACEHOLDER_NAMES).functions()
    if "CALLBACK_TYPE" in spec.environment
]


def load_handler(code_uri: str, handler: str, environment: dict[str, str], name: str):
    module_name, function_name = handler.rsplit(".", 1)
    path = ROOT / code_uri / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"handler_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ, environment):
        spec.loader.exec_module(module)
    return getattr(module, function_name)


def test_template_has_six_callback_functions():
    assert sorted(spec.logical_id for spec in CALLBACK_FUNCTIONS) == [
        "ErrorFunction",
        "IdentErrorFunction",
        "InitiateFunction",
        "StartSignFunction",
        "SuccessFunction",
        "UpdateFunction",
    ]


@pytest.mark.parametrize("logical_id", [spec.logical_id for spec in CALLBACK_FUNCTIONS])
def test_function_answers_its_sample_event(stack, logical_id, capsys):
    template = Template(resource_names=stack.as_resource_names())
    [spec] = [item for item in template.functions() if item.logical_id == logical_id]
    callback_type = spec.environment["CALLBACK_TYPE"]
    event = json.loads((ROOT / "events" / f"{callback_type.lower()}.json").read_text())
    environment = {**spec.environment, "POWERTOOLS_TRACE_DISABLED": "true"}
    handler = load_handler(spec.code_uri, spec.handler, environment, logical_id)

    with mock.patch.dict(os.environ, environment):
        response = handler(event, LambdaContext())

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["status"] == "recorded"
    [record] = callback_records(stack)
    assert record["route_type"] == callback_type
    [published] = published_events(stack)
    assert published["detail-type"] == f"Skribble Callback {callback_type}"
    # Powertools writes EMF metrics to stdout when the handler returns.
    metrics = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"_aws"' in line
    ]
    assert any(item.get("CallbackRecorded") == [1.0] for item in metrics)
