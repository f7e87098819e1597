"""HTTP edge cases of the local gateway, sent over real TLS connections."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.request_body import MAX_BODY_BYTES
from tests.e2e.test_mutual_tls import _records
from tests.support.sim_client import wait_for

pytestmark = pytest.mark.e2e

# socketserver prints this line with the traceback of an uncaught exception.
SERVER_ERROR_MARKER = "Exception occurred during processing of request"


def _context(local_stack: dict[str, Any]) -> ssl.SSLContext:
    pki = local_stack["pki"]
    context = ssl.create_default_context(cafile=pki["server_ca"])
    context.load_cert_chain(pki["client_cert"], pki["client_key"])
    return context


def _connection(local_stack: dict[str, Any]) -> http.client.HTTPSConnection:
    netloc = urlsplit(local_stack["gateway_url"]).netloc
    return http.client.HTTPSConnection(
        netloc, timeout=30, context=_context(local_stack)
    )


def _send_raw(
    local_stack: dict[str, Any], head: bytes
) -> tuple[http.client.HTTPResponse, bytes]:
    """Send a request head as written, without a body; return the response."""
    parts = urlsplit(local_stack["gateway_url"])
    assert parts.hostname is not None
    assert parts.port is not None
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    tls = _context(local_stack).wrap_socket(raw, server_hostname=parts.hostname)
    tls.sendall(head)
    response = http.client.HTTPResponse(tls)
    response.begin()
    body = response.read()
    tls.close()
    return response, body


def _raw_post(path: str, *header_lines: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", *header_lines, "", ""]
    return "\r\n".join(lines).encode()


def _success_path(request_id: str) -> str:
    return f"/callbacks/success/{request_id}/{uuid.uuid4()}"


def _json(response: http.client.HTTPResponse, body: bytes) -> Any:
    assert response.getheader("Content-Type") == "application/json"
    return json.loads(body)


@pytest.mark.parametrize("length", ["-5", "abc", "+5", "1_0", "5, 6"])
def test_invalid_content_length_gets_400(local_stack, dynamodb, stack_log, length):
    request_id = str(uuid.uuid4())
    head = _raw_post(_success_path(request_id), f"Content-Length: {length}")

    response, body = _send_raw(local_stack, head)

    assert response.status == 400
    assert _json(response, body) == {"message": "Invalid Content-Length"}
    assert response.getheader("Connection") == "close"
    assert _records(local_stack, dynamodb, request_id) == []
    assert SERVER_ERROR_MARKER not in stack_log.read_text()


def test_body_over_limit_gets_413(local_stack, dynamodb, stack_log):
    request_id = str(uuid.uuid4())
    connection = _connection(local_stack)
    try:
        # http.client sends the whole body before it reads the response.
        connection.request(
            "POST", _success_path(request_id), body=b"x" * (MAX_BODY_BYTES + 1)
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    assert response.status == 413
    assert _json(response, body) == {"message": "Request Too Long"}
    assert _records(local_stack, dynamodb, request_id) == []
    assert SERVER_ERROR_MARKER not in stack_log.read_text()


def test_declared_length_over_limit_gets_413_before_body(local_stack):
    head = _raw_post(
        _success_path(str(uuid.uuid4())),
        f"Content-Length: {MAX_BODY_BYTES + 1}",
        "Expect: 100-continue",
    )

    response, _ = _send_raw(local_stack, head)

    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"


def test_chunked_body_reaches_function(local_stack, dynamodb):
    request_id = str(uuid.uuid4())
    connection = _connection(local_stack)
    try:
        connection.request(
            "POST",
            _success_path(request_id),
            body=iter([b"{", b"}"]),
            encode_chunked=True,
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    assert response.status == 200
    assert json.loads(body)["status"] == "recorded"
    assert len(_records(local_stack, dynamodb, request_id)) == 1


def test_both_framings_get_400(local_stack, dynamodb):
    request_id = str(uuid.uuid4())
    head = _raw_post(
        _success_path(request_id), "Content-Length: 2", "Transfer-Encoding: chunked"
    )

    response, _ = _send_raw(local_stack, head)

    assert response.status == 400
    assert _records(local_stack, dynamodb, request_id) == []


@pytest.mark.parametrize("method", ["TRACE", "FOO", "CONNECT"])
def test_method_without_resource_gets_json_403(local_stack, dynamodb, method):
    request_id = str(uuid.uuid4())
    head = f"{method} {_success_path(request_id)} HTTP/1.1\r\nHost: x\r\n\r\n"

    response, body = _send_raw(local_stack, head.encode())

    assert response.status == 403
    assert _json(response, body) == {"message": "Missing Authentication Token"}
    assert _records(local_stack, dynamodb, request_id) == []


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_api_methods_get_function_405(local_stack, method):
    connection = _connection(local_stack)
    try:
        connection.request(method, _success_path(str(uuid.uuid4())), body=b"{}")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 405
    assert response.getheader("Allow") == "GET, POST"
    assert body["error"] == "method_not_allowed"


def test_malformed_request_line_gets_json(local_stack):
    head = b"GET /callbacks/success HTTP/9.9\r\n\r\n"

    response, body = _send_raw(local_stack, head)

    assert response.status == 505
    assert _json(response, body) == {"message": "HTTP Version Not Supported"}


def test_access_log_has_resource_not_path(local_stack, stack_log):
    token = f"token-{uuid.uuid4().hex}"
    body_marker = f"body-{uuid.uuid4().hex}"
    address = f"signer-{uuid.uuid4().hex[:8]}@example.org"
    connection = _connection(local_stack)
    try:
        connection.request(
            "POST",
            f"/callbacks/success/not-a-uuid-{address}?token={token}",
            body=json.dumps({"note": body_marker}).encode(),
        )
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    expected = "POST /callbacks/success/{proxy+} -> SuccessFunction -> 400"
    wait_for(lambda: expected in stack_log.read_text(), timeout=5)
    log = stack_log.read_text()
    assert address not in log
    assert token not in log
    assert body_marker not in log
