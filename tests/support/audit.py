"""A test bench for the audit: simulator, receiver gateway, table and bus."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import boto3

from local.resources import StackResources, drain_events
from local.simulator import Simulator
from skribble_receiver.audit_config import AuditSettings
from skribble_receiver.audit_run import AuditReport, create_audit_run, window_scope
from tests.support.gateway import ReceiverGateway
from tests.support.sim_client import SimClient

SIMULATOR_USERNAME = "api_demo_simulator"
SIMULATOR_API_KEY = "simulator-demo-key"


def create_credentials_secret(
    username: str = SIMULATOR_USERNAME, api_key: str = SIMULATOR_API_KEY
) -> str:
    """Store Skribble credentials in Secrets Manager and return the ARN."""
    secrets = boto3.client("secretsmanager")
    response = secrets.create_secret(
        Name=f"skribble-api-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps({"username": username, "api_key": api_key}),
    )
    return str(response["ARN"])


@dataclass
class AuditBench:
    """Everything an audit test drives, started on loopback for one test."""

    stack: StackResources
    simulator: Simulator
    sim: SimClient
    gateway: ReceiverGateway
    secret_arn: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def settings(self, **overrides: Any) -> AuditSettings:
        values: dict[str, Any] = {
            "table_name": self.stack.table_name,
            "event_bus_name": self.stack.bus_name,
            "event_source": "skribble.callbacks",
            "record_retention_days": 400,
            "skribble_api_base_url": self.simulator.base_url + "/v2",
            "credentials_secret_arn": self.secret_arn,
            "lookback_hours": 6,
            "unpublished_grace_seconds": 300,
            "degraded_attempts": 3,
            "max_concurrency": 4,
            "stop_before_timeout_seconds": 30,
            "max_list_pages": 5,
            "api_timeout_seconds": 2.0,
        }
        values.update(overrides)
        return AuditSettings.model_validate(values)

    def run_audit(
        self,
        *,
        budget_seconds: float = 60.0,
        mode: str = "scheduled",
        signature_request_ids: tuple[str, ...] = (),
        **overrides: Any,
    ) -> AuditReport:
        settings = self.settings(**overrides)
        run = create_audit_run(settings)
        scope = window_scope(datetime.now(UTC), settings.lookback_hours, mode=mode)
        if signature_request_ids:
            scope = replace(scope, signature_request_ids=signature_request_ids)
        return run.run(scope, budget_seconds=budget_seconds)

    def create_request(self, base_url: str | None = None, **fields: Any) -> str:
        """Create a signature request whose callbacks go to `base_url`."""
        base = base_url or self.gateway.base_url
        ids = "SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID"
        fields.setdefault("callback_success_url", f"{base}/callbacks/success/{ids}")
        fields.setdefault(
            "callback_update_url",
            f"{base}/callbacks/update/{ids}/SKRIBBLE_SIGNATURE_ID",
        )
        fields.setdefault("callback_error_url", f"{base}/callbacks/error/{ids}")
        return str(self.sim.create(**fields)["id"])

    def callback_records(self, signature_request_id: str) -> list[dict[str, Any]]:
        """Return the callback records of a request as plain dicts."""
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        response = boto3.client("dynamodb").query(
            TableName=self.stack.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :callback)",
            ExpressionAttributeValues={
                ":pk": {"S": f"SR#{signature_request_id}"},
                ":callback": {"S": "CALLBACK#"},
            },
            ConsistentRead=True,
        )
        return [
            {name: deserializer.deserialize(value) for name, value in item.items()}
            for item in response["Items"]
        ]

    def audit_state(self, signature_request_id: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        item = (
            boto3.client("dynamodb")
            .get_item(
                TableName=self.stack.table_name,
                Key={"pk": {"S": f"SR#{signature_request_id}"}, "sk": {"S": "AUDIT"}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        if item is None:
            return None
        return {name: deserializer.deserialize(value) for name, value in item.items()}

    def new_events(self) -> list[dict[str, Any]]:
        """Return the bus events published since the last call."""
        events = drain_events(self.stack.queue_url)
        self.events.extend(events)
        return events


def callback_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        event
        for event in events
        if event["detail-type"].startswith("Skribble Callback")
    ]


def summary_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        event for event in events if event["detail-type"] == "Skribble Audit Completed"
    ]


def put_callback_record(
    bench: AuditBench,
    *,
    signature_request_id: str,
    route_type: str,
    document_id: str | None,
    received_at: datetime,
    event_status: str = "PUBLISHED",
    callback_type: str | None = None,
    type_confirmed: bool = True,
) -> str:
    """Write a callback record as the receiver would have; return its callback id."""
    from skribble_receiver.models import CallbackKey, CallbackType
    from skribble_receiver.records import activity_hour, iso

    key = CallbackKey(
        route_type=CallbackType(route_type),
        signature_request_id=signature_request_id,
        document_id=document_id,
    )
    item: dict[str, Any] = {
        "pk": {"S": key.pk},
        "sk": {"S": key.sk},
        "record_type": {"S": "CALLBACK"},
        "callback_id": {"S": key.callback_id},
        "signature_request_id": {"S": signature_request_id},
        "route_type": {"S": route_type},
        "callback_type": {"S": callback_type or route_type},
        "type_confirmed": {"BOOL": type_confirmed},
        "record_source": {"S": "RECEIVER"},
        "first_received_at": {"S": iso(received_at)},
        "activity_hour": {"S": activity_hour(datetime.now(UTC))},
        "event_status": {"S": event_status},
        "publish_lease_until": {"S": iso(received_at)},
        "delivery_count": {"N": "1"},
    }
    if document_id:
        item["document_id"] = {"S": document_id}
    boto3.client("dynamodb").put_item(TableName=bench.stack.table_name, Item=item)
    return key.callback_id
