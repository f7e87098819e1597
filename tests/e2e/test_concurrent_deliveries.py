"""Concurrent deliveries of one callback, through the gateway's worker pools."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.test_gateway_http import _context
from tests.e2e.test_mutual_tls import _events, _records
from tests.support.sim_client import wait_for

pytestmark = pytest.mark.e2e

DELIVERIES = 10


def _all_workers_ready(local_stack: dict[str, Any]) -> bool:
    url = local_stack["admin_url"] + "/_local/health"
    with urllib.request.urlopen(url, timeout=5) as response:
        workers = json.load(response)["workers"]
    return all(pool["ready"] == pool["total"] for pool in workers.values())


def _deliver(
    local_stack: dict[str, Any], path: str, start: threading.Barrier
) -> tuple[int, str | None, dict[str, Any]]:
    netloc = urlsplit(local_stack["gateway_url"]).netloc
    connection = http.client.HTTPSConnection(
        netloc, timeout=30, context=_context(local_stack)
    )
    try:
        # The handshake happens before the barrier, so that the requests
        # reach the gateway as close together as possible.
        connection.connect()
        start.wait(timeout=30)
        connection.request("POST", path, body=b"{}")
        response = connection.getresponse()
        body = json.loads(response.read())
        return response.status, response.getheader("Retry-After"), body
    finally:
        connection.close()


def test_concurrent_deliveries_keep_one_record(local_stack, dynamodb, sqs):
    wait_for(lambda: _all_workers_ready(local_stack), timeout=60, interval=0.2)
    request_id = str(uuid.uuid4())
    path = f"/callbacks/update/{request_id}/{uuid.uuid4()}/{uuid.uuid4()}"
    start = threading.Barrier(DELIVERIES)

    with ThreadPoolExecutor(max_workers=DELIVERIES) as pool:
        futures = [
            pool.submit(_deliver, local_stack, path, start) for _ in range(DELIVERIES)
        ]
        answers = [future.result() for future in futures]

    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}, answers
    assert 200 in statuses
    for status, retry_after, body in answers:
        if status == 503:
            assert body["error"] == "delivery_in_progress"
            assert retry_after is not None
    [record] = _records(local_stack, dynamodb, request_id)
    # Every delivery counts, with a 200 or a 503, before the race is decided.
    assert record["delivery_count"]["N"] == str(DELIVERIES)
    assert len(_events(local_stack, sqs, request_id)) == 1
