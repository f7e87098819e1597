"""HTTP helper for tests that drive the simulator on loopback."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class SimClient:
    """Minimal client for the simulator's `/v2` and `/_sim` routes."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(
        self,
        method: str,
        path: str,
        payload: Any = None,
        headers: dict[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> HttpResult:
        body = raw_body
        all_headers = dict(headers or {})
        if payload is not None:
            body = json.dumps(payload).encode()
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(
            self.base_url + path, data=body, method=method, headers=all_headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return HttpResult(
                    response.status, dict(response.headers.items()), response.read()
                )
        except urllib.error.HTTPError as error:
            return HttpResult(error.code, dict(error.headers.items()), error.read())

    def login(
        self, username: str = "api_demo_simulator", api_key: str = "simulator-demo-key"
    ) -> str:
        result = self.call(
            "POST", "/v2/access/login", {"username": username, "api-key": api_key}
        )
        assert result.status == 200, result.body
        return result.body.decode()

    def api(self, method: str, path: str, token: str) -> HttpResult:
        return self.call(method, path, headers={"Authorization": f"Bearer {token}"})

    def admin(self, path: str, payload: Any = None) -> Any:
        result = self.call("POST" if payload is not None else "GET", path, payload)
        assert 200 <= result.status < 300, result.body
        return result.json()

    def create(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("title", "Test contract")
        fields.setdefault("signatures", ["signer@example.com"])
        created: dict[str, Any] = self.admin("/_sim/signature-requests", fields)
        return created

    def step(self, request_id: str, step: str, signer: str | None = None) -> Any:
        payload = {} if signer is None else {"signer": signer}
        return self.admin(f"/_sim/signature-requests/{request_id}/{step}", payload)

    def callbacks(self, request_id: str | None = None) -> list[dict[str, Any]]:
        query = f"?signature_request_id={request_id}" if request_id else ""
        result: list[dict[str, Any]] = self.admin("/_sim/callbacks" + query)
        return result


def wait_for(
    condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
