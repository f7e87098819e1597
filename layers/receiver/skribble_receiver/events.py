"""Publish one EventBridge event per callback."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from skribble_receiver.aws import Deadline, aws_call
from skribble_receiver.errors import TransientFailure
from skribble_receiver.models import CallbackEventDetail, event_detail_type

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

# PutEvents can accept the request and still fail the entry (FailedEntryCount),
# for example when EventBridge throttles. Such an entry is sent again, up to
# this many attempts in all, while the deadline allows.
MAX_PUBLISH_ATTEMPTS = 3


class EventPublisher:
    """Sends callback events to one event bus."""

    def __init__(
        self, events: EventBridgeClient, *, bus_name: str, source: str
    ) -> None:
        self._events = events
        self._bus_name = bus_name
        self._source = source

    def publish(
        self, detail: CallbackEventDetail, *, time: datetime, deadline: Deadline
    ) -> str:
        """Publish the event and return its EventBridge event id.

        Raises TransientFailure when the entry still fails after the retries,
        leaving the record unpublished for the next delivery or the audit.
        """
        return self._put(
            event_detail_type(detail.callback_type),
            detail.model_dump_json(),
            time=time,
            deadline=deadline,
            step="publish event",
        )

    def publish_summary(
        self, detail_type: str, detail_json: str, *, time: datetime, deadline: Deadline
    ) -> str:
        """Publish an event that is not a callback, such as an audit summary.

        Retries a failed entry like `publish`; raises TransientFailure when
        it still fails.
        """
        return self._put(
            detail_type,
            detail_json,
            time=time,
            deadline=deadline,
            step="publish summary event",
        )

    def _put(
        self,
        detail_type: str,
        detail_json: str,
        *,
        time: datetime,
        deadline: Deadline,
        step: str,
    ) -> str:
        entry: PutEventsRequestEntryTypeDef = {
            "EventBusName": self._bus_name,
            "Source": self._source,
            "DetailType": detail_type,
            "Detail": detail_json,
            "Resources": [],
            "Time": time,
        }
        error_code = "unknown"
        for _attempt in range(MAX_PUBLISH_ATTEMPTS):
            deadline.require(step)
            with aws_call(step):
                response = self._events.put_events(Entries=[entry])
            if not response.get("FailedEntryCount"):
                return str(response["Entries"][0]["EventId"])
            error_code = str(response["Entries"][0].get("ErrorCode", "unknown"))
        raise TransientFailure(
            "publish_failed",
            f"EventBridge rejected the event {detail_type!r} ({error_code}). "
            "Retry later.",
        )
