"""The demo's access to the running local stack.

Reads `stack.json`, calls the simulator and the gateway's control port over
HTTP, and reads the table and the event queue from moto.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local.resources import drain_events
from local.stack import DEFAULT_STATE_DIR, FAKE_CREDENTIALS

# Simulated seconds per real second during the demo: Skribble's 10-minute
# retry interval passes in one real second.
DEMO_TIME_SCALE = 600.0
SETTLE_TIMEOUT_SECONDS = 60.0


class DemoError(Exception):
    """Raised when the stack is not running or a step fails."""


def load_stack(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, Any]:
    """Read `stack.json` that a running `python -m local.stack` wrote."""
    path = state_dir / "stack.json"
    try:
        details: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise DemoError(
            f"{path} not found: start the local stack first with `make dev`"
        ) from None
    return details


class JsonClient:
    """JSON over HTTP to the simulator and the gateway control port."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self.timeout = timeout

    def call(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        # The base URL is a loopback http URL from stack.json.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path,
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self.timeout
            ) as response:
                return json.loads(response.read())
        except OSError as exc:
            raise DemoError(
                f"{self.base_url}{path} failed: {exc}. Is the local stack running?"
            ) from exc


@dataclass
class Scenario:
    """The signature requests one demo run created, by what happens to them."""

    request_ids: dict[str, str] = field(default_factory=dict)
    # HTTP calls per completed callback, by signature request id.
    duplicates: dict[str, int] = field(default_factory=dict)


def simulator_callbacks(
    simulator: JsonClient, request_ids: list[str]
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for request_id in request_ids:
        found.extend(
            simulator.call(f"/_sim/callbacks?signature_request_id={request_id}")
        )
    return found


def wait_for(condition: Callable[[], bool], description: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise DemoError(
                f"Timed out after {SETTLE_TIMEOUT_SECONDS:.0f} s waiting for "
                f"{description}"
            )
        time.sleep(0.1)


def aws_session(stack: dict[str, Any]) -> boto3.Session:
    """Return a boto3 session with the stack's region and fake credentials."""
    return boto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=stack["region"],
    )


class BusEvents:
    """Every event read from the stack's event queue so far.

    Reading a queue deletes its messages, so the events are kept here for
    summaries that compare the bus before and after a step.
    """

    def __init__(self, stack: dict[str, Any]) -> None:
        self._queue_url = stack["queue_url"]
        self._sqs = aws_session(stack).client("sqs", endpoint_url=stack["moto_url"])
        self.events: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """Read the events that arrived since the last call and return them."""
        new = drain_events(self._queue_url, wait_seconds=1, sqs=self._sqs)
        self.events.extend(new)
        return new


def callback_records(
    stack: dict[str, Any], request_ids: list[str]
) -> list[dict[str, Any]]:
    """Return the callback records of the signature requests, in DynamoDB JSON.

    The audit's own state item shares the partition and is left out.
    """
    dynamodb = aws_session(stack).client("dynamodb", endpoint_url=stack["moto_url"])
    records: list[dict[str, Any]] = []
    for request_id in request_ids:
        response = dynamodb.query(
            TableName=stack["table_name"],
            KeyConditionExpression="pk = :pk AND begins_with(sk, :callback)",
            ExpressionAttributeValues={
                ":pk": {"S": f"SR#{request_id}"},
                ":callback": {"S": "CALLBACK#"},
            },
            ConsistentRead=True,
        )
        records.extend(response["Items"])
    return records
