"""The audit's own items in the callbacks table: activity, state and cursor.

- ActivityIndex (hash `activity_hour`, range `pk`, keys only) lists the
  signature requests with callback records first seen in a UTC hour, so the
  audit's reads grow with the signature requests in its window.
- `pk = SR#<id>, sk = AUDIT` is the latest audit result of a signature request.
- `pk = AUDIT#CURSOR, sk = CURSOR` lists the signature requests a run that ran
  out of time did not reach, for the next run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from skribble_receiver.aws import aws_call
from skribble_receiver.records import _map, _number, _string, activity_hour, iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACTIVITY_INDEX = "ActivityIndex"
AUDIT_SORT_KEY = "AUDIT"
CURSOR_KEY = {"pk": {"S": "AUDIT#CURSOR"}, "sk": {"S": "CURSOR"}}
# A DynamoDB item is at most 400 KB; a signature request id takes about
# 40 bytes in the list, so this many ids stay well below the limit.
MAX_CURSOR_IDS = 5000
_SR_PREFIX = "SR#"


def hours_between(start: datetime, end: datetime) -> list[str]:
    """Return the ActivityIndex partitions from `start` to `end`, both included."""
    hours: list[str] = []
    moment = start.replace(minute=0, second=0, microsecond=0)
    while moment <= end:
        hours.append(activity_hour(moment))
        moment += timedelta(hours=1)
    return hours


class AuditStore:
    """Reads ActivityIndex and keeps the audit state and the cursor."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table_name = table_name

    def active_signature_requests(self, start: datetime, end: datetime) -> list[str]:
        """Return the signature requests with callback records first seen in
        the window, oldest hour first, each once."""
        found: dict[str, None] = {}
        for hour in hours_between(start, end):
            query: dict[str, Any] = {
                "TableName": self._table_name,
                "IndexName": ACTIVITY_INDEX,
                "KeyConditionExpression": "activity_hour = :hour",
                "ExpressionAttributeValues": {":hour": _string(hour)},
            }
            while True:
                with aws_call("query activity index"):
                    response = self._dynamodb.query(**query)
                for item in response["Items"]:
                    pk = item["pk"]["S"]
                    if pk.startswith(_SR_PREFIX):
                        found[pk[len(_SR_PREFIX) :]] = None
                last_key = response.get("LastEvaluatedKey")
                if not last_key:
                    break
                query["ExclusiveStartKey"] = last_key
        return list(found)

    def save_state(
        self,
        signature_request_id: str,
        state: dict[str, Any],
        *,
        now: datetime,
        retention_days: int,
    ) -> None:
        """Store the latest audit result of one signature request."""
        item = {
            "pk": _string(f"{_SR_PREFIX}{signature_request_id}"),
            "sk": _string(AUDIT_SORT_KEY),
            "record_type": _string("AUDIT"),
            "audited_at": _string(iso(now)),
            "expires_at": _number(
                int((now + timedelta(days=retention_days)).timestamp())
            ),
            **_map(state)["M"],
        }
        with aws_call("save audit state"):
            self._dynamodb.put_item(TableName=self._table_name, Item=item)

    def load_state(self, signature_request_id: str) -> dict[str, Any] | None:
        """Return the stored audit result of one signature request, if any."""
        from boto3.dynamodb.types import TypeDeserializer

        with aws_call("load audit state"):
            response = self._dynamodb.get_item(
                TableName=self._table_name,
                Key={
                    "pk": _string(f"{_SR_PREFIX}{signature_request_id}"),
                    "sk": _string(AUDIT_SORT_KEY),
                },
                ConsistentRead=True,
            )
        item = response.get("Item")
        if not item:
            return None
        deserializer = TypeDeserializer()
        return {name: deserializer.deserialize(value) for name, value in item.items()}

    def load_cursor(self) -> list[str]:
        """Return the signature requests the previous run did not reach."""
        with aws_call("load audit cursor"):
            response = self._dynamodb.get_item(
                TableName=self._table_name, Key=CURSOR_KEY, ConsistentRead=True
            )
        item = response.get("Item") or {}
        return [value["S"] for value in item.get("pending", {}).get("L", [])]

    def save_cursor(self, pending: list[str], *, now: datetime) -> int:
        """Store the signature requests left for the next run.

        Returns how many ids were dropped because the item would grow past
        MAX_CURSOR_IDS; the next runs find those through their window again
        while it still covers them.
        """
        kept = pending[:MAX_CURSOR_IDS]
        with aws_call("save audit cursor"):
            self._dynamodb.put_item(
                TableName=self._table_name,
                Item={
                    **CURSOR_KEY,
                    "record_type": _string("AUDIT_CURSOR"),
                    "pending": {"L": [_string(value) for value in kept]},
                    "saved_at": _string(iso(now)),
                },
            )
        return len(pending) - len(kept)
