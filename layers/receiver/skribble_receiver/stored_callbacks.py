"""Callback records as the audit reads, recovers and repairs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from skribble_receiver.aws import aws_call
from skribble_receiver.models import (
    BodySummary,
    CallbackKey,
    CallbackType,
    EventStatus,
    RecordSource,
)
from skribble_receiver.records import (
    RECORD_TYPE_CALLBACK,
    CallbackRecords,
    _map,
    _number,
    _string,
    activity_hour,
    iso,
)


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
    """Skribble's data on a callback that never reached the receiver."""

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
        type_in_key=(
            CallbackType(item["type_in_key"]["S"]) if "type_in_key" in item else None
        ),
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
    exists, and only the holder of the publish lease publishes the event.
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
        if key.type_in_key is not None:
            item["type_in_key"] = _string(key.type_in_key.value)
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

        The type comes from Skribble's delivery log; `type_settled_by` records
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
