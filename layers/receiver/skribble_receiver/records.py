"""Callback and quarantine records in the callbacks table.

Repeats are detected by a conditional write on the record itself, not by
Powertools' idempotency utility. That utility keys on a payload hash and
replays a stored response. Here a repeated delivery must also update the
record (delivery count, last-seen time), the record must stay readable by the
audit, and a delivery racing an in-flight one must not get a stored 200 before
the event is published. One UpdateItem with `if_not_exists` does all of that
in one call, and its old image distinguishes a new callback from a repeat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from skribble_receiver.aws import aws_call
from skribble_receiver.errors import DeliveryInProgress
from skribble_receiver.models import (
    BodySummary,
    CallbackKey,
    CallbackType,
    ClientCertificateInfo,
    Delivery,
    EventStatus,
    RecordSource,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RECORD_TYPE_CALLBACK = "CALLBACK"
RECORD_TYPE_QUARANTINE = "QUARANTINE"


def iso(moment: datetime) -> str:
    """Format a time as ISO 8601 in UTC with millisecond precision."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def activity_hour(moment: datetime) -> str:
    """Return the ActivityIndex partition of a time, one per UTC hour."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def _string(value: str) -> dict[str, Any]:
    return {"S": value}


def _number(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def _map(values: dict[str, Any]) -> dict[str, Any]:
    """Serialize a flat dict of str, int, bool, None and tuple of str."""
    serialized: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            serialized[name] = {"BOOL": value}
        elif isinstance(value, int):
            serialized[name] = _number(value)
        elif isinstance(value, tuple | list):
            serialized[name] = {"L": [_string(item) for item in value]}
        elif isinstance(value, dict):
            serialized[name] = _map(value)
        elif isinstance(value, datetime):
            serialized[name] = _string(iso(value))
        else:
            serialized[name] = _string(str(value))
    return {"M": serialized}


@dataclass(frozen=True)
class RecordOutcome:
    """Result of recording one delivery: new or repeat, and whether to publish."""

    is_new: bool
    must_publish: bool
    delivery_count: int
    callback_type: CallbackType
    type_confirmed: bool
    first_received_at: datetime
    record_source: RecordSource


class CallbackRecords:
    """Reads and writes callback records in one table."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table_name = table_name

    def record_delivery(
        self,
        key: CallbackKey,
        *,
        callback_type: CallbackType,
        type_confirmed: bool,
        delivery: Delivery,
        certificate: ClientCertificateInfo,
        body: BodySummary,
        retention_days: int,
        publish_lease: timedelta,
    ) -> RecordOutcome:
        """Create the record of a callback, or count a repeated delivery.

        Raises DeliveryInProgress when another delivery of the same callback
        holds the publish lease, so that this one gets 503 and is retried
        instead of acknowledged before the event exists.
        """
        now = delivery.received_at
        values: dict[str, Any] = {
            ":record_type": _string(RECORD_TYPE_CALLBACK),
            ":callback_id": _string(key.callback_id),
            ":signature_request_id": _string(key.signature_request_id),
            ":route_type": _string(key.route_type.value),
            ":callback_type": _string(callback_type.value),
            ":type_confirmed": {"BOOL": type_confirmed},
            ":source": _string(RecordSource.RECEIVER.value),
            ":now": _string(iso(now)),
            ":hour": _string(activity_hour(now)),
            ":expires_at": _number(
                int((now + timedelta(days=retention_days)).timestamp())
            ),
            ":pending": _string(EventStatus.PENDING.value),
            ":lease": _string(iso(now + publish_lease)),
            ":delivery": _map(delivery.model_dump(mode="json")),
            ":body": _map(body.model_dump(mode="json")),
            ":certificate": _map(certificate.model_dump(mode="json")),
            ":one": _number(1),
        }
        assignments = [
            # Attributes set once, by the first delivery (or by the audit when
            # it recovered the callback before any delivery arrived).
            "record_type = if_not_exists(record_type, :record_type)",
            "callback_id = if_not_exists(callback_id, :callback_id)",
            "signature_request_id = "
            "if_not_exists(signature_request_id, :signature_request_id)",
            "route_type = if_not_exists(route_type, :route_type)",
            "callback_type = if_not_exists(callback_type, :callback_type)",
            "type_confirmed = if_not_exists(type_confirmed, :type_confirmed)",
            "record_source = if_not_exists(record_source, :source)",
            "first_received_at = if_not_exists(first_received_at, :now)",
            "activity_hour = if_not_exists(activity_hour, :hour)",
            "expires_at = if_not_exists(expires_at, :expires_at)",
            "event_status = if_not_exists(event_status, :pending)",
            "publish_lease_until = if_not_exists(publish_lease_until, :lease)",
            "first_delivery = if_not_exists(first_delivery, :delivery)",
            "body_summary = if_not_exists(body_summary, :body)",
            # Attributes every delivery refreshes.
            "last_received_at = :now",
            "last_delivery = :delivery",
            "client_certificate = :certificate",
        ]
        for name in ("document_id", "signature_id"):
            value = getattr(key, name)
            if value is not None:
                values[f":{name}"] = _string(value)
                assignments.append(f"{name} = if_not_exists({name}, :{name})")
        if key.type_in_key is not None:
            values[":type_in_key"] = _string(key.type_in_key.value)
            assignments.append("type_in_key = if_not_exists(type_in_key, :type_in_key)")

        with aws_call("record callback"):
            response = self._dynamodb.update_item(
                TableName=self._table_name,
                Key={"pk": _string(key.pk), "sk": _string(key.sk)},
                UpdateExpression="SET "
                + ", ".join(assignments)
                + " ADD delivery_count :one",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )

        old = response.get("Attributes")
        if not old:
            return RecordOutcome(
                is_new=True,
                must_publish=True,
                delivery_count=1,
                callback_type=callback_type,
                type_confirmed=type_confirmed,
                first_received_at=now,
                record_source=RecordSource.RECEIVER,
            )

        outcome = RecordOutcome(
            is_new=False,
            must_publish=False,
            delivery_count=int(old.get("delivery_count", {}).get("N", "0")) + 1,
            callback_type=CallbackType(old["callback_type"]["S"]),
            type_confirmed=old["type_confirmed"]["BOOL"],
            first_received_at=datetime.fromisoformat(old["first_received_at"]["S"]),
            record_source=RecordSource(old["record_source"]["S"]),
        )
        if old["event_status"]["S"] == EventStatus.PUBLISHED.value:
            return outcome

        # The event is not out yet. Either a delivery is publishing it right
        # now (its lease runs), or an earlier one failed after recording.
        old_lease = old.get("publish_lease_until", {}).get("S", "")
        if old_lease and datetime.fromisoformat(old_lease) > now:
            raise DeliveryInProgress(
                "delivery_in_progress",
                "Another delivery of this callback is being processed. Retry later.",
            )
        self._take_over_lease(key, old_lease, now + publish_lease)
        return RecordOutcome(**{**outcome.__dict__, "must_publish": True})

    def _take_over_lease(
        self, key: CallbackKey, old_lease: str, lease: datetime
    ) -> None:
        from botocore.exceptions import ClientError

        # Compare-and-set on the expired lease: of several deliveries that
        # find it expired at once, exactly one wins and publishes.
        condition = "event_status = :pending AND "
        values: dict[str, Any] = {
            ":pending": _string(EventStatus.PENDING.value),
            ":lease": _string(iso(lease)),
        }
        if old_lease:
            condition += "publish_lease_until = :old_lease"
            values[":old_lease"] = _string(old_lease)
        else:
            condition += "attribute_not_exists(publish_lease_until)"
        try:
            with aws_call("take over publish lease"):
                try:
                    self._dynamodb.update_item(
                        TableName=self._table_name,
                        Key={"pk": _string(key.pk), "sk": _string(key.sk)},
                        UpdateExpression="SET publish_lease_until = :lease",
                        ConditionExpression=condition,
                        ExpressionAttributeValues=values,
                    )
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if code != "ConditionalCheckFailedException":
                        raise
                    raise _LeaseTaken from exc
        except _LeaseTaken as exc:
            raise DeliveryInProgress(
                "delivery_in_progress",
                "Another delivery of this callback is being processed. Retry later.",
            ) from exc

    def mark_published(self, key: CallbackKey, *, event_id: str, at: datetime) -> None:
        """Record that the callback's event is on the bus."""
        with aws_call("mark event published"):
            self._dynamodb.update_item(
                TableName=self._table_name,
                Key={"pk": _string(key.pk), "sk": _string(key.sk)},
                UpdateExpression="SET event_status = :published, "
                "published_at = :at, event_id = :event_id",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={
                    ":published": _string(EventStatus.PUBLISHED.value),
                    ":at": _string(iso(at)),
                    ":event_id": _string(event_id),
                },
            )

    def quarantine(
        self,
        *,
        route_type: CallbackType,
        reason: str,
        fingerprint: str,
        received_at: datetime,
        retention_days: int,
        request_id: str,
    ) -> None:
        """Keep a malformed delivery once, counting its repeats.

        `fingerprint` identifies the delivery (route, path, query, body hash)
        without storing any of them: a repeat of the same bad delivery lands
        on the same item.
        """
        key = hashlib.sha256(fingerprint.encode()).hexdigest()
        with aws_call("quarantine malformed callback"):
            self._dynamodb.update_item(
                TableName=self._table_name,
                Key={
                    "pk": _string(f"QUARANTINE#{key}"),
                    "sk": _string(RECORD_TYPE_QUARANTINE),
                },
                UpdateExpression="SET record_type = :record_type, "
                "route_type = :route_type, quarantine_reason = :reason, "
                "first_received_at = if_not_exists(first_received_at, :now), "
                "last_received_at = :now, last_request_id = :request_id, "
                "expires_at = if_not_exists(expires_at, :expires_at) "
                "ADD delivery_count :one",
                ExpressionAttributeValues={
                    ":record_type": _string(RECORD_TYPE_QUARANTINE),
                    ":route_type": _string(route_type.value),
                    ":reason": _string(reason),
                    ":now": _string(iso(received_at)),
                    ":request_id": _string(request_id),
                    ":expires_at": _number(
                        int((received_at + timedelta(days=retention_days)).timestamp())
                    ),
                    ":one": _number(1),
                },
            )


class _LeaseTaken(Exception):
    """Another delivery took the publish lease first."""
