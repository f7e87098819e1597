"""Callback and quarantine records in the callbacks table.

Why a conditional write on the record itself rather than Powertools'
idempotency utility: the utility keys on a payload hash and replays a stored
response, but a repeated delivery here must also update the record (delivery
count, last-seen time), the record must stay readable by the audit, and a
delivery racing an in-flight one must not get a stored 200 before the event is
published. One UpdateItem with `if_not_exists` does all of that in one call
and returns the old image, which tells a new callback from a repeat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
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
    """What recording one delivery found and decided."""

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
        holds the publish lease, so that this one is answered 503 and retried
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


# --- Reads and writes of the audit -------------------------------------------


@dataclass(frozen=True)
class StoredCallback:
    """A callback record as the audit reads it."""

    key: CallbackKey
    callback_type: CallbackType
    type_confirmed: bool
    record_source: RecordSource
    event_status: EventStatus
    first_received_at: datetime
    publish_lease_until: datetime | None
    delivery_count: int
    body: BodySummary | None
    signature_request_status: str | None = None


@dataclass(frozen=True)
class RecoveredCallback:
    """What the audit knows of a callback that never reached the receiver."""

    callback_type: CallbackType
    type_confirmed: bool
    skribble_state: str
    attempts: int
    created_at: datetime | None
    last_message: str | None
    signature_request_status: str | None


def _plain(value: dict[str, Any]) -> Any:
    """Convert one DynamoDB attribute value to plain Python."""
    from boto3.dynamodb.types import TypeDeserializer

    deserialize: Callable[[Any], Any] = TypeDeserializer().deserialize
    return deserialize(value)


def stored_callback(item: dict[str, Any]) -> StoredCallback:
    """Read a callback record from its DynamoDB item."""
    route_type = CallbackType(item["route_type"]["S"])
    key = CallbackKey(
        route_type=route_type,
        signature_request_id=item["signature_request_id"]["S"],
        document_id=item.get("document_id", {}).get("S"),
        signature_id=item.get("signature_id", {}).get("S"),
    )
    lease = item.get("publish_lease_until", {}).get("S")
    body = item.get("body_summary")
    return StoredCallback(
        key=key,
        callback_type=CallbackType(item["callback_type"]["S"]),
        type_confirmed=bool(item["type_confirmed"]["BOOL"]),
        record_source=RecordSource(item["record_source"]["S"]),
        event_status=EventStatus(item["event_status"]["S"]),
        first_received_at=datetime.fromisoformat(item["first_received_at"]["S"]),
        publish_lease_until=datetime.fromisoformat(lease) if lease else None,
        delivery_count=int(item.get("delivery_count", {}).get("N", "0")),
        body=BodySummary.model_validate(_plain(body)) if body else None,
        signature_request_status=item.get("signature_request_status", {}).get("S"),
    )


class AuditRecords(CallbackRecords):
    """The callback record reads and writes that only the audit makes.

    Recovery follows the receiver's rules: a record is created only where none
    exists, and whoever holds the publish lease publishes the one event.
    """

    def callbacks_of(self, signature_request_id: str) -> list[StoredCallback]:
        """Return every callback record of one signature request."""
        records: list[StoredCallback] = []
        query: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :callback)",
            "ExpressionAttributeValues": {
                ":pk": _string(f"SR#{signature_request_id}"),
                ":callback": _string(f"{RECORD_TYPE_CALLBACK}#"),
            },
            "ConsistentRead": True,
        }
        while True:
            with aws_call("read callback records"):
                response = self._dynamodb.query(**query)
            records.extend(stored_callback(item) for item in response["Items"])
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return records
            query["ExclusiveStartKey"] = last_key

    def recover(
        self,
        key: CallbackKey,
        recovered: RecoveredCallback,
        *,
        now: datetime,
        retention_days: int,
        publish_lease: timedelta,
    ) -> bool:
        """Create the record of a callback Skribble gave up on.

        Returns True when this call created the record and so holds its
        publish lease, False when a record already exists (a late delivery
        or an earlier audit wrote it, and that writer publishes).
        """
        item: dict[str, Any] = {
            "pk": _string(key.pk),
            "sk": _string(key.sk),
            "record_type": _string(RECORD_TYPE_CALLBACK),
            "callback_id": _string(key.callback_id),
            "signature_request_id": _string(key.signature_request_id),
            "route_type": _string(key.route_type.value),
            "callback_type": _string(recovered.callback_type.value),
            "type_confirmed": {"BOOL": recovered.type_confirmed},
            "record_source": _string(RecordSource.AUDIT.value),
            "first_received_at": _string(iso(now)),
            "recovered_at": _string(iso(now)),
            "activity_hour": _string(activity_hour(now)),
            "expires_at": _number(
                int((now + timedelta(days=retention_days)).timestamp())
            ),
            "event_status": _string(EventStatus.PENDING.value),
            "publish_lease_until": _string(iso(now + publish_lease)),
            "delivery_count": _number(0),
            "skribble_callback": _map(
                {
                    "type": recovered.callback_type.value,
                    "state": recovered.skribble_state,
                    "attempts": recovered.attempts,
                    "created_at": recovered.created_at,
                    "last_message": recovered.last_message,
                }
            ),
        }
        if recovered.signature_request_status:
            item["signature_request_status"] = _string(
                recovered.signature_request_status
            )
        for name in ("document_id", "signature_id"):
            value = getattr(key, name)
            if value is not None:
                item[name] = _string(value)
        return _conditional_write(
            "recover callback",
            lambda: self._dynamodb.put_item(
                TableName=self._table_name,
                Item=item,
                # A record that exists came from a delivery or an
                # earlier run: it is never overwritten.
                ConditionExpression="attribute_not_exists(pk)",
            ),
        )

    def try_take_publish_lease(
        self, stored: StoredCallback, *, now: datetime, lease: timedelta
    ) -> bool:
        """Take the publish lease of a record whose event is still PENDING.

        Returns False when the lease still runs or another writer changed it
        first. The compare-and-set on the old lease is the receiver's: of all
        who find the lease expired, exactly one wins and publishes.
        """
        old_lease = stored.publish_lease_until
        if old_lease is not None and old_lease > now:
            return False
        values: dict[str, Any] = {
            ":pending": _string(EventStatus.PENDING.value),
            ":lease": _string(iso(now + lease)),
        }
        condition = "event_status = :pending AND "
        if old_lease is not None:
            condition += "publish_lease_until = :old_lease"
            values[":old_lease"] = _string(iso(old_lease))
        else:
            condition += "attribute_not_exists(publish_lease_until)"
        return _conditional_write(
            "take over publish lease",
            lambda: self._dynamodb.update_item(
                TableName=self._table_name,
                Key={"pk": _string(stored.key.pk), "sk": _string(stored.key.sk)},
                UpdateExpression="SET publish_lease_until = :lease",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            ),
        )

    def settle_callback_type(
        self, key: CallbackKey, callback_type: CallbackType, *, now: datetime
    ) -> bool:
        """Set the type of a record the receiver could not confirm.

        The type comes from Skribble's delivery log; `type_settled_by` says
        that the audit, not the delivery, decided it. Returns False when the
        type was confirmed already.
        """
        return _conditional_write(
            "settle callback type",
            lambda: self._dynamodb.update_item(
                TableName=self._table_name,
                Key={"pk": _string(key.pk), "sk": _string(key.sk)},
                UpdateExpression="SET callback_type = :type, "
                "type_confirmed = :true, type_settled_by = :audit, "
                "type_settled_at = :now",
                ConditionExpression="type_confirmed = :false",
                ExpressionAttributeValues={
                    ":type": _string(callback_type.value),
                    ":true": {"BOOL": True},
                    ":false": {"BOOL": False},
                    ":audit": _string(RecordSource.AUDIT.value),
                    ":now": _string(iso(now)),
                },
            ),
        )


def _conditional_write(step: str, write: Callable[[], object]) -> bool:
    """Run a conditional write; return False when its condition failed."""
    from botocore.exceptions import ClientError

    with aws_call(step):
        try:
            write()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                return False
            raise
    return True
