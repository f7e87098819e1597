"""Create the template's table and bus in the embedded AWS stand-in.

The table and the bus are built from their definitions in template.yaml. A
rule that copies every event on the bus to an SQS queue is added, so that the
local stack and the tests can read back what was published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from local.template import Template

TABLE_ID = "CallbacksTable"
BUS_ID = "EventBus"


@dataclass(frozen=True)
class StackResources:
    """Names of the local stand-ins for the template's resources."""

    table_name: str
    bus_name: str
    queue_url: str

    def as_resource_names(self) -> dict[str, str]:
        """Return what `Ref` yields for each resource, for Template."""
        return {TABLE_ID: self.table_name, BUS_ID: self.bus_name}


def create_table(template: Template, table_name: str) -> None:
    """Create the callbacks table with the template's keys, indexes and TTL."""
    properties = template.resolve(template.resource(TABLE_ID)["Properties"])
    dynamodb = boto3.client("dynamodb")
    create_args: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties["BillingMode"],
    }
    if properties.get("GlobalSecondaryIndexes"):
        create_args["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    sse = properties.get("SSESpecification")
    if sse:
        # CloudFormation spells the switch SSEEnabled; the API spells it Enabled.
        create_args["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))}
    dynamodb.create_table(**create_args)
    dynamodb.get_waiter("table_exists").wait(TableName=table_name)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)


def create_bus_with_queue(template: Template, bus_name: str) -> str:
    """Create the event bus and a queue that receives all its events.

    Returns the queue URL.
    """
    template.resource(BUS_ID)
    events = boto3.client("events")
    sqs = boto3.client("sqs")
    events.create_event_bus(Name=bus_name)
    queue_url = sqs.create_queue(QueueName=f"{bus_name}-all-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    rule_name = f"{bus_name}-all-events"
    events.put_rule(
        Name=rule_name,
        EventBusName=bus_name,
        # Every event whose account is this account, which is every event.
        EventPattern=json.dumps({"account": [{"exists": True}]}),
    )
    events.put_targets(
        Rule=rule_name,
        EventBusName=bus_name,
        Targets=[{"Id": "all-events", "Arn": queue_arn}],
    )
    return queue_url


def create_stack_resources(template: Template, prefix: str) -> StackResources:
    """Create the table and bus under names that start with `prefix`."""
    table_name = f"{prefix}-callbacks"
    bus_name = f"{prefix}-callbacks"
    create_table(template, table_name)
    queue_url = create_bus_with_queue(template, bus_name)
    return StackResources(table_name=table_name, bus_name=bus_name, queue_url=queue_url)


def drain_events(
    queue_url: str, *, wait_seconds: int = 0, sqs: Any = None
) -> list[dict[str, Any]]:
    """Read and delete every event currently in the queue.

    `sqs` is an SQS client; the default client follows AWS_ENDPOINT_URL.
    """
    sqs = sqs if sqs is not None else boto3.client("sqs")
    events: list[dict[str, Any]] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        messages = response.get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        wait_seconds = 0


def upload_truststore(bundle: bytes, bucket: str) -> tuple[str, str]:
    """Put a truststore bundle in a versioned bucket, as `make truststore` does.

    Returns the TruststoreUri and TruststoreVersion template parameters.
    """
    from tools.truststore import upload_bundle

    s3 = boto3.client("s3")
    s3.create_bucket(
        Bucket=bucket,
        CreateBucketConfiguration={
            "LocationConstraint": s3.meta.region_name  # type: ignore[typeddict-item]
        },
    )
    s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    key = "skribble-truststore.pem"
    version = upload_bundle(s3, bundle, bucket=bucket, key=key)
    return f"s3://{bucket}/{key}", version
