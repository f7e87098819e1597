"""Request and response values passed between the server and the routes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """Parse the body as a JSON object; an empty body is `{}`."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc.msg}") from exc
        if not isinstance(value, dict):
            raise BadRequest("request body must be a JSON object")
        return value


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(Exception):
    """The request body or parameters are invalid; the message gives the reason."""


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value, indent=None).encode())


def problem(status: int, detail: str, instance: str) -> Response:
    """Build an RFC 9457 problem response.

    NOTE: Skribble's OpenAPI gives no body for error responses, so this shape is
    an assumption; clients should rely on the status code.
    """
    document = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return Response(status, json.dumps(document).encode(), PROBLEM_CONTENT_TYPE)
