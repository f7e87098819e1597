"""Build callback deliveries and read back what the receiver left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from local.apigw_event import client_cert_context, rest_proxy_event
from local.pki import Issued
from local.resources import StackResources, drain_events
from skribble_receiver.models import CallbackType

SR = "4f43614a-de50-bfe1-2df3-4c881fc7840e"
DOC = "29eae6aa-5558-2ada-2870-d4e654c0da5c"
SIG = "894a0240-e01a-2307-4376-0267c6a8d105"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "events"


def segment(callback_type: str) -> str:
    return callback_type.lower().replace("_", "-")


def path_delivery(
    callback_type: str,
    ids: list[str],
    certificate: Issued | None,
    *,
    method: str = "POST",
    body: bytes | None = b'{"status": "SIGNED"}',
    query: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Return the API Gateway event of a path-form callback delivery."""
    proxy = "/".join(ids)
    return rest_proxy_event(
        method=method,
        path=f"/callbacks/{segment(callback_type)}/{proxy}",
        resource=f"/callbacks/{segment(callback_type)}/{{proxy+}}",
        path_parameters={"proxy": proxy},
        query=query or [],
        headers=[("Content-Type", "application/json"), ("User-Agent", "Skribble")],
        body=body,
        client_cert=client_cert_context(certificate.cert) if certificate else None,
    )


def query_delivery(
    callback_type: str,
    query: list[tuple[str, str]],
    certificate: Issued | None,
) -> dict[str, Any]:
    """Return the API Gateway event of a query-form callback delivery."""
    return rest_proxy_event(
        method="POST",
        path=f"/callbacks/{segment(callback_type)}",
        resource=f"/callbacks/{segment(callback_type)}",
        query=query,
        body=b"{}",
        client_cert=client_cert_context(certificate.cert) if certificate else None,
    )


def table_items(stack: StackResources) -> list[dict[str, Any]]:
    """Return every item in the table, with attribute values unwrapped."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    items = boto3.client("dynamodb").scan(TableName=stack.table_name)["Items"]
    return [
        {name: deserializer.deserialize(value) for name, value in item.items()}
        for item in items
    ]


def callback_records(stack: StackResources) -> list[dict[str, Any]]:
    return [item for item in table_items(stack) if item["record_type"] == "CALLBACK"]


def published_events(stack: StackResources) -> list[dict[str, Any]]:
    return drain_events(stack.queue_url)


def event_schema(callback_type: CallbackType) -> dict[str, Any]:
    path = SCHEMA_DIR / f"skribble-callback-{segment(callback_type.value)}.json"
    return json.loads(path.read_text())


def response_body(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["body"])


class _RawBody:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_kwargs: Any) -> Any:
        yield self._content


class FailedPutEvents:
    """Return a failed entry for the next `count` PutEvents calls.

    The response is produced in place of sending the request, as EventBridge
    does when it accepts the call but fails the entry, so nothing reaches
    the bus for those calls.
    """

    def __init__(self, events_client: Any, count: int, error_code: str) -> None:
        self._client = events_client
        self.remaining = count
        self._error_code = error_code

    def _answer(self, request: Any, **_kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        if self.remaining <= 0:
            return None
        self.remaining -= 1
        body = json.dumps(
            {
                "FailedEntryCount": 1,
                "Entries": [
                    {"ErrorCode": self._error_code, "ErrorMessage": "test failure"}
                ],
            }
        ).encode()
        return AWSResponse(request.url, 200, HTTPHeaders(), _RawBody(body))

    def __enter__(self) -> FailedPutEvents:
        self._client.meta.events.register("before-send.events.PutEvents", self._answer)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.meta.events.unregister(
            "before-send.events.PutEvents", self._answer
        )


class LostPutEventsResponse:
    """Let the next PutEvents reach EventBridge, then lose its response.

    This is a read timeout after EventBridge published the event: the caller
    cannot know whether the event is out.
    """

    def __init__(self, events_client: Any) -> None:
        self._client = events_client
        self.fired = False

    def _lose(self, **_kwargs: Any) -> None:
        from botocore.exceptions import ReadTimeoutError

        if not self.fired:
            self.fired = True
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1")

    def __enter__(self) -> LostPutEventsResponse:
        self._client.meta.events.register("after-call.events.PutEvents", self._lose)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.meta.events.unregister("after-call.events.PutEvents", self._lose)
