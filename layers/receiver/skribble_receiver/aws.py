"""AWS clients with timeouts and a bounded retry budget, one per container."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from skribble_receiver.errors import TransientFailure

# Skribble expects a response within 5 seconds. A callback makes at most three
# AWS calls, so each call may use one retry and must fail fast rather than
# hang: 0.5 s to connect and 1 s to read, twice, stays within 3 s per call.
CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 1.0
MAX_ATTEMPTS = 2
# PutEvents is not idempotent: after a read timeout, EventBridge may have
# published the event, and a retry would publish it again. So botocore does
# not retry it; EventPublisher retries only entries reported as failed.
MAX_ATTEMPTS_BY_SERVICE = {"events": 1}
# A call is not started with less time left than one attempt can take.
MIN_CALL_BUDGET_MS = int((CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) * 1000)


@cache
def client(service: str) -> Any:
    """Return the container's client for an AWS service.

    boto3 is imported here rather than at module level, so importing the
    handler stays cheap and the first request of a container pays for it.
    The endpoint comes from the standard AWS settings, so `AWS_ENDPOINT_URL`
    points every client at a local stand-in without code changes.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={
            "mode": "standard",
            "total_max_attempts": MAX_ATTEMPTS_BY_SERVICE.get(service, MAX_ATTEMPTS),
        },
        tcp_keepalive=True,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]


@dataclass
class Deadline:
    """Time left to respond to the caller, counted from the start of a request."""

    expires_at: float

    @classmethod
    def start(cls, budget_ms: int, lambda_context: Any = None) -> Deadline:
        budget = budget_ms
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if remaining is not None:
            # Keep half a second to build and return the response.
            budget = min(budget, int(remaining()) - 500)
        return cls(expires_at=time.monotonic() + budget / 1000)

    def remaining_ms(self) -> int:
        return int((self.expires_at - time.monotonic()) * 1000)

    def require(self, step: str) -> None:
        """Raise TransientFailure when too little time is left for an AWS call."""
        if self.remaining_ms() < MIN_CALL_BUDGET_MS:
            raise TransientFailure(
                "deadline_exceeded",
                f"Ran out of time before '{step}'; the callback was not "
                "completed. Retry later.",
            )


@contextmanager
def aws_call(step: str) -> Iterator[None]:
    """Turn any AWS failure during `step` into a TransientFailure.

    Throttling, timeouts and service errors are worth a retry by Skribble.
    Permission or validation errors are deployment faults, but returning 503
    keeps Skribble retrying for two hours, and the audit recovers what
    Skribble gives up on once an operator has fixed them.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        raise TransientFailure(
            "aws_error",
            f"AWS returned {code} during '{step}'. Retry later.",
        ) from exc
    except BotoCoreError as exc:
        raise TransientFailure(
            "aws_unavailable",
            f"AWS could not be reached during '{step}'. Retry later.",
        ) from exc
