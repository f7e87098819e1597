"""The built functions handle their sample events in Lambda containers.

Each function of the `sam build` output runs through `sam local invoke`, with
the built layer imported the way the Lambda runtime imports it, against moto
on 127.0.0.1. `make invoke-test` prepares Docker, the base image and the
build, and sets SAM_BUILT_TEMPLATE to the built template.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from local.pki import make_intermediate, make_root, pem_bundle
from local.resources import (
    StackResources,
    create_stack_resources,
    drain_events,
    upload_truststore,
)
from local.simulator import Simulator, SimulatorConfig
from local.template import Template
from tests.support.audit import create_credentials_secret
from tests.support.pki import PkiFiles
from tests.support.sam_local import (
    ROOT,
    Invocation,
    InvocationFailed,
    sam_local_invoke,
    write_env_vars,
)
from tests.support.sim_client import SimClient, wait_for

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
TEMPLATE_FUNCTIONS = Template(
    resource_names={"CallbacksTable": "table", "EventBus": "bus"}
).functions()
CALLBACK_TYPES = {
    spec.logical_id: spec.environment["CALLBACK_TYPE"]
    for spec in TEMPLATE_FUNCTIONS
    if "CALLBACK_TYPE" in spec.environment
}
# Functions that run on a schedule, each tested by its own test below.
SCHEDULED_FUNCTIONS = {"AuditFunction", "CertificateExpiryFunction"}
# Days until the truststore's intermediate expires: inside the 30-day warning.
TRUSTSTORE_DAYS_LEFT = 20
# The layer package that the broken build leaves out. The handler imports it
# (through skribble_receiver) at init, as every callback function does.
REMOVED_PACKAGE = "pydantic"
INVOKE_WORKERS = max(1, min(len(CALLBACK_TYPES), os.cpu_count() or 1))


def built_template() -> Path:
    assert BUILT_TEMPLATE is not None
    return Path(BUILT_TEMPLATE).resolve()


def sample_event(callback_type: str) -> Path:
    return EVENTS_DIR / f"{callback_type.lower()}.json"


def stack_variables(stack: StackResources, aws_endpoint: str) -> dict[str, str]:
    """Return the variables that point a function at the stack in moto."""
    return {
        "TABLE_NAME": stack.table_name,
        "EVENT_BUS_NAME": stack.bus_name,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def callback_env_vars(stack: StackResources, aws_endpoint: str) -> dict[str, Any]:
    """Return `--env-vars` blocks that point each callback function at moto."""
    variables = stack_variables(stack, aws_endpoint)
    return {logical_id: dict(variables) for logical_id in CALLBACK_TYPES}


def closed_loopback_url() -> str:
    """Return a URL on 127.0.0.1 whose port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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

    stack: StackResources
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
    # enough to hit the function timeout and the receiver's response deadline.
    with ThreadPoolExecutor(max_workers=INVOKE_WORKERS) as pool:
        invocations = dict(
            zip(CALLBACK_TYPES, pool.map(invoke, CALLBACK_TYPES), strict=True)
        )
    return CallbackRun(
        stack=stack,
        invocations=invocations,
        records=table_items(stack.table_name),
        events=drain_events(stack.queue_url),
    )


def test_every_template_function_has_a_test():
    assert {spec.logical_id for spec in TEMPLATE_FUNCTIONS} == (
        set(CALLBACK_TYPES) | SCHEDULED_FUNCTIONS
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
def test_function_returns_recorded(callback_run, logical_id):
    response = callback_run.invocations[logical_id].response()

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["status"] == "recorded"
    assert body["callback_id"]


@pytest.mark.parametrize("logical_id", sorted(CALLBACK_TYPES))
def test_function_writes_one_callback_record(callback_run, logical_id):
    callback_type = CALLBACK_TYPES[logical_id]
    callback_id = json.loads(callback_run.invocations[logical_id].response()["body"])[
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
    callback_id = json.loads(callback_run.invocations[logical_id].response()["body"])[
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


def test_certificate_expiry_reads_callbacks_and_truststore(
    callback_run, moto_endpoint, tmp_path
):
    """The expiry check finds the client certificate of the sample events."""
    root = make_root("Invoke Test Root")
    intermediate = make_intermediate(
        root,
        "Invoke Test CA",
        not_after=datetime.now(UTC) + timedelta(days=TRUSTSTORE_DAYS_LEFT, hours=1),
    )
    stack = callback_run.stack
    uri, version = upload_truststore(
        pem_bundle(root, intermediate), bucket=f"ts-{stack.table_name}"
    )
    env_vars = write_env_vars(
        tmp_path / "env.json",
        {
            "CertificateExpiryFunction": {
                **stack_variables(stack, moto_endpoint),
                "TRUSTSTORE_URI": uri,
                "TRUSTSTORE_VERSION": version,
            }
        },
    )

    invocation = sam_local_invoke(
        "CertificateExpiryFunction",
        EVENTS_DIR / "certificate_expiry.json",
        template=built_template(),
        env_vars=env_vars,
        aws_endpoint=moto_endpoint,
    )

    response = invocation.response()
    assert response["truststore_min_days_left"] == TRUSTSTORE_DAYS_LEFT
    # The sample events carry a client certificate valid until 2099.
    assert response["client_days_left"] > 365 * 70
    assert [item["threshold_days"] for item in response["warnings"]] == [30]
    [warning_event] = drain_events(stack.queue_url)
    assert warning_event["detail-type"] == "Skribble Certificate Expiry Warning"
    assert any(
        record.get("TruststoreCertificateMinDaysLeft") == [float(TRUSTSTORE_DAYS_LEFT)]
        for record in invocation.log_records()
    )


@pytest.fixture
def simulator(pki: PkiFiles) -> Iterator[Simulator]:
    """Start a Skribble simulator whose two retry hours pass in about 2 s."""
    simulator = Simulator(
        SimulatorConfig(
            client_cert=pki.client_cert,
            client_key=pki.client_key,
            ca_bundle=pki.ca_cert,
            callback_timeout=5.0,
            time_scale=3600,
        )
    )
    simulator.start()
    yield simulator
    simulator.stop()


def test_audit_recovers_callbacks_skribble_gave_up(simulator, moto_endpoint, tmp_path):
    """The audit logs in to the simulator and recovers two missed callbacks."""
    sim = SimClient(simulator.base_url)
    unreachable = closed_loopback_url()
    ids = "SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID"
    request_id = sim.create(
        callback_success_url=f"{unreachable}/callbacks/success/{ids}",
        callback_update_url=f"{unreachable}/callbacks/update/{ids}/SKRIBBLE_SIGNATURE_ID",
        callback_error_url=f"{unreachable}/callbacks/error/{ids}",
    )["id"]
    sim.step(request_id, "sign")
    wait_for(
        lambda: (
            [callback["state"] for callback in sim.callbacks(request_id)]
            == ["RESIGNATED", "RESIGNATED"]
        ),
        timeout=30,
    )
    stack = create_stack_resources(Template(), prefix=f"audit-{uuid.uuid4().hex[:8]}")
    env_vars = write_env_vars(
        tmp_path / "env.json",
        {
            "AuditFunction": {
                **stack_variables(stack, moto_endpoint),
                "SKRIBBLE_API_BASE_URL": f"{simulator.base_url}/v2",
                "SKRIBBLE_CREDENTIALS_SECRET_ARN": create_credentials_secret(),
            }
        },
    )

    invocation = sam_local_invoke(
        "AuditFunction",
        EVENTS_DIR / "audit.json",
        template=built_template(),
        env_vars=env_vars,
        aws_endpoint=moto_endpoint,
    )

    summary = invocation.response()
    assert summary["complete"] is True
    assert summary["signature_requests"]["audited"] == 1
    assert summary["callbacks"]["recovered"] == 2
    records = [
        item
        for item in table_items(stack.table_name)
        if item.get("record_type") == "CALLBACK"
    ]
    assert sorted(record["route_type"] for record in records) == ["SUCCESS", "UPDATE"]
    assert {record["record_source"] for record in records} == {"AUDIT"}
    events = drain_events(stack.queue_url)
    recovered = [
        event
        for event in events
        if event["detail-type"].startswith("Skribble Callback")
    ]
    assert len(recovered) == 2
    assert all(event["detail"]["recovered"] is True for event in recovered)
    assert [event["detail-type"] for event in events].count(
        "Skribble Audit Completed"
    ) == 1


def test_broken_layer_fails_with_import_error(moto_endpoint, tmp_path):
    """A layer that lacks a requirement must fail the checks above."""
    broken_build = tmp_path / "build"
    # Hard links make the copy cheap. Removing the package unlinks only the
    # copy's names, so the real build stays intact.
    shutil.copytree(built_template().parent, broken_build, copy_function=os.link)
    package = broken_build / "ReceiverLayer" / "python" / REMOVED_PACKAGE
    assert package.is_dir(), f"the built layer lacks {REMOVED_PACKAGE} already"
    shutil.rmtree(package)
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
        invocation.response()
    assert f"No module named '{REMOVED_PACKAGE}'" in str(failed.value)
    assert table_items(stack.table_name) == []
    assert drain_events(stack.queue_url) == []
