"""The built functions answer their sample events in Lambda containers.

Each function of the `sam build` output runs through `sam local invoke`, with
the built layer imported the way the Lambda runtime imports it, against moto
on 127.0.0.1. `make invoke-test` prepares Docker, the base image and the
build, and sets SAM_BUILT_TEMPLATE to the built template.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from local.resources import StackResources, create_stack_resources, drain_events
from local.template import Template
from tests.support.sam_local import (
    ROOT,
    Invocation,
    InvocationFailed,
    sam_local_invoke,
    write_env_vars,
)

BUILT_TEMPLATE = os.environ.get("SAM_BUILT_TEMPLATE")

pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(
        not BUILT_TEMPLATE,
        reason="needs Docker, the Lambda base image and `sam build` output; "
        "run `make invoke-test`",
    ),
]

EVENTS_DIR = ROOT / "events"
CALLBACK_TYPES = {
    spec.logical_id: spec.environment["CALLBACK_TYPE"]
    for spec in Template(
        resource_names={"CallbacksTable": "table", "EventBus": "bus"}
    ).functions()
    if "CALLBACK_TYPE" in spec.environment
}
# The layer package that the broken build leaves out. The handler imports it
# (through skribble_receiver) at init, as every callback function does.
REMOVED_PACKAGE = "pydantic"
INVOKE_WORKERS = max(1, min(len(CALLBACK_TYPES), os.cpu_count() or 1))


def built_template() -> Path:
    assert BUILT_TEMPLATE is not None
    return Path(BUILT_TEMPLATE).resolve()


def sample_event(callback_type: str) -> Path:
    return EVENTS_DIR / f"{callback_type.lower()}.json"


def callback_env_vars(stack: StackResources, aws_endpoint: str) -> dict[str, Any]:
    """Return `--env-vars` blocks that point each callback function at moto."""
    variables = {
        "TABLE_NAME": stack.table_name,
        "EVENT_BUS_NAME": stack.bus_name,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    return {logical_id: dict(variables) for logical_id in CALLBACK_TYPES}


def table_items(table_name: str) -> list[dict[str, Any]]:
    deserializer = TypeDeserializer()
    items = boto3.client("dynamodb").scan(TableName=table_name)["Items"]
    return [
        {name: deserializer.deserialize(value) for name, value in item.items()}
        for item in items
    ]


@dataclass(frozen=True)
class CallbackRun:
    """The invocations of all callback functions and what they left behind."""

    invocations: dict[str, Invocation]
    records: list[dict[str, Any]]
    events: list[dict[str, Any]]


@pytest.fixture(scope="module")
def callback_run(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> CallbackRun:
    """Invoke every callback function once with its sample event."""
    stack = create_stack_resources(Template(), prefix=f"invoke-{uuid.uuid4().hex[:8]}")
    env_vars = write_env_vars(
        tmp_path_factory.mktemp("invoke") / "env.json",
        callback_env_vars(stack, moto_endpoint),
    )

    def invoke(logical_id: str) -> Invocation:
        return sam_local_invoke(
            logical_id,
            sample_event(CALLBACK_TYPES[logical_id]),
            template=built_template(),
            env_vars=env_vars,
            aws_endpoint=moto_endpoint,
        )

    # SAM CLI rebuilds its image for a template-defined layer on every invoke
    # (about 5 s), but concurrent invokes wait under a file lock for one build
    # and share it. More parallel invokes than CPU cores make cold starts slow
    # enough to hit the function timeout and the receiver's answer deadline.
    with ThreadPoolExecutor(max_workers=INVOKE_WORKERS) as pool:
        invocations = dict(
            zip(CALLBACK_TYPES, pool.map(invoke, CALLBACK_TYPES), strict=True)
        )
    return CallbackRun(
        invocations=invocations,
        records=table_items(stack.table_name),
        events=drain_events(stack.queue_url),
    )


def test_template_has_six_callback_functions():
    assert sorted(CALLBACK_TYPES) == [
        "ErrorFunction",
        "IdentErrorFunction",
        "InitiateFunction",
        "StartSignFunction",
        "SuccessFunction",
        "UpdateFunction",
    ]


@pytest.mark.parametrize("logical_id", sorted(CALLBACK_TYPES))
def test_function_answers_recorded(callback_run, logical_id):
    answer = callback_run.invocations[logical_id].answer()

    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert body["status"] == "recorded"
    assert body["callback_id"]


@pytest.mark.parametrize("logical_id", sorted(CALLBACK_TYPES))
def test_function_writes_one_callback_record(callback_run, logical_id):
    callback_type = CALLBACK_TYPES[logical_id]
    callback_id = json.loads(callback_run.invocations[logical_id].answer()["body"])[
        "callback_id"
    ]

    records = [
        item for item in callback_run.records if item.get("callback_id") == callback_id
    ]

    assert len(records) == 1
    [record] = records
    assert record["record_type"] == "CALLBACK"
    assert record["route_type"] == callback_type
    assert record["sk"].startswith(f"CALLBACK#{callback_type}#")
    assert record["delivery_count"] == 1
    assert record["event_status"] == "PUBLISHED"


@pytest.mark.parametrize("logical_id", sorted(CALLBACK_TYPES))
def test_function_publishes_one_event(callback_run, logical_id):
    callback_type = CALLBACK_TYPES[logical_id]
    callback_id = json.loads(callback_run.invocations[logical_id].answer()["body"])[
        "callback_id"
    ]

    events = [
        event
        for event in callback_run.events
        if event["detail"]["callback_id"] == callback_id
    ]

    assert len(events) == 1
    [event] = events
    assert event["source"] == "skribble.callbacks"
    assert event["detail-type"] == f"Skribble Callback {callback_type}"
    assert event["detail"]["route_type"] == callback_type


@pytest.mark.parametrize("logical_id", sorted(CALLBACK_TYPES))
def test_function_logs_recorded_metric(callback_run, logical_id):
    records = callback_run.invocations[logical_id].log_records()

    recorded_logs = [
        record for record in records if record.get("message") == "Callback recorded"
    ]
    assert len(recorded_logs) == 1
    assert recorded_logs[0]["function_name"] == logical_id
    assert any(record.get("CallbackRecorded") == [1.0] for record in records)


def test_all_events_belong_to_invoked_functions(callback_run):
    assert len(callback_run.events) == len(CALLBACK_TYPES)


def test_broken_layer_fails_with_import_error(moto_endpoint, tmp_path):
    """A layer that lacks a requirement must fail the checks above."""
    broken_build = tmp_path / "build"
    # Hard links make the copy cheap. Removing the package unlinks only the
    # copy's names, so the real build stays intact.
    shutil.copytree(built_template().parent, broken_build, copy_function=os.link)
    shutil.rmtree(broken_build / "ReceiverLayer" / "python" / REMOVED_PACKAGE)
    stack = create_stack_resources(Template(), prefix=f"broken-{uuid.uuid4().hex[:8]}")
    env_vars = write_env_vars(
        tmp_path / "env.json", callback_env_vars(stack, moto_endpoint)
    )

    invocation = sam_local_invoke(
        "SuccessFunction",
        sample_event("SUCCESS"),
        template=broken_build / "template.yaml",
        env_vars=env_vars,
        aws_endpoint=moto_endpoint,
    )

    with pytest.raises(InvocationFailed, match=r"Runtime\.ImportModuleError") as failed:
        invocation.answer()
    assert f"No module named '{REMOVED_PACKAGE}'" in str(failed.value)
    assert table_items(stack.table_name) == []
    assert drain_events(stack.queue_url) == []
