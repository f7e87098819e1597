"""HTTPS gateway with mutual TLS that stands in for the API Gateway custom domain.

It requires a client certificate that verifies against the truststore bundle,
as API Gateway does with the truststore in S3: a missing, expired or foreign
certificate fails the TLS handshake and no function runs. Each request is
turned into the REST proxy event API Gateway sends, with
`requestContext.identity.clientCert`, and routed by the template's API events
to the function's worker. The handler's answer becomes the HTTP response.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509

from local.apigw_event import client_cert_context, rest_proxy_event
from local.functions import FunctionError, LocalFunction
from local.routing import Router
from local.simulator.callback_url import redact
from local.simulator.config import require_loopback_host

logger = logging.getLogger("local.gateway")

# API Gateway's payload limit for REST APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024
HANDSHAKE_TIMEOUT_SECONDS = 10.0
_JSON = "application/json"


def server_context(cert: str, key: str, truststore: str) -> ssl.SSLContext:
    """Build the server TLS context: TLS 1.2 or later, client cert required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # The template's custom domain uses SecurityPolicy TLS_1_2.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(cafile=truststore)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gateway: Gateway

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs in the request's thread, so that a slow or
        # failing client does not hold up the accept loop.
        request.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
        try:
            connection = self.gateway.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            # OpenSSL's verify message names the check that failed, for
            # example "unsuitable certificate purpose" for a client
            # certificate without the clientAuth extended key usage.
            verify_message = getattr(exc, "verify_message", None)
            if verify_message:
                reason = f"{reason} ({verify_message})"
            logger.warning(
                "TLS handshake failed from %s:%s: %s; no function called",
                client_address[0],
                client_address[1],
                reason,
            )
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            with contextlib.suppress(OSError):
                connection.close()


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "LocalApiGateway"

    def do_GET(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def do_PUT(self) -> None:
        self._proxy()

    def do_PATCH(self) -> None:
        self._proxy()

    def do_DELETE(self) -> None:
        self._proxy()

    def do_HEAD(self) -> None:
        self._proxy()

    def do_OPTIONS(self) -> None:
        self._proxy()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http " + format, *args)

    def _proxy(self) -> None:
        started = time.monotonic()
        status, headers, body, target = self._answer()
        self._send(status, headers, body)
        logger.info(
            "%s %s -> %s -> %d %s (%d ms)",
            self.command,
            redact(self.path),
            target,
            status,
            _summary(body),
            (time.monotonic() - started) * 1000,
        )

    def _answer(self) -> tuple[int, list[tuple[str, str]], bytes, str]:
        gateway = self.server.gateway
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return (*_message(400, "Invalid Content-Length"), "(bad request)")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return (*_message(413, "Request Too Long"), "(body too large)")
        body = self.rfile.read(length) if length else b""
        if gateway.outage.is_set():
            return (*_message(503, "Service Unavailable"), "(outage switched on)")

        parts = urlsplit(self.path)
        # NOTE: routes are matched at the root, as with the template's default
        # empty BasePath; a non-empty BasePath is not stripped here.
        route = gateway.router.match(self.command, parts.path)
        if route is None:
            return (*_message(403, "Missing Authentication Token"), "(no route)")

        peer = self.connection.getpeercert(binary_form=True)
        certificate = x509.load_der_x509_certificate(peer)
        event = rest_proxy_event(
            method=self.command,
            path=parts.path,
            resource=route.resource,
            path_parameters=route.path_parameters,
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=[
                *self.headers.items(),
                ("X-Forwarded-For", self.client_address[0]),
                ("X-Forwarded-Port", str(gateway.port)),
                ("X-Forwarded-Proto", "https"),
            ],
            body=body,
            client_cert=client_cert_context(certificate),
            source_ip=self.client_address[0],
            domain_name=gateway.domain_name,
            stage=gateway.stage,
        )
        request_id = event["requestContext"]["requestId"]
        try:
            result = gateway.functions[route.function].invoke(event)
        except FunctionError as exc:
            logger.error("Function failed: %s", exc)
            status, headers, answer = _message(502, "Internal server error")
            return status, headers, answer, route.function
        status, headers, answer = _response_from(result)
        headers.append(("x-amzn-RequestId", request_id))
        return status, headers, answer, route.function

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _message(status: int, text: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Return a response in the shape of API Gateway's own error responses."""
    body = json.dumps({"message": text}).encode()
    return status, [("Content-Type", _JSON)], body


def _response_from(
    result: Mapping[str, Any],
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Turn a Lambda proxy integration result into status, headers and body."""
    status = int(result.get("statusCode", 200))
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    for name, values in multi.items():
        headers.extend((name, str(value)) for value in values)
    for name, value in (result.get("headers") or {}).items():
        if name not in multi:
            headers.append((name, str(value)))
    raw = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = str(raw).encode("utf-8")
    return status, headers, body


def _summary(body: bytes) -> str:
    """Return the status or error field of a JSON response, for the log line."""
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    for key in ("status", "error", "message"):
        if key in document:
            return str(document[key])
    return ""


class Gateway:
    """The HTTPS server, its routes and the functions behind them."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext,
        router: Router,
        functions: Mapping[str, LocalFunction],
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "live",
        domain_name: str = "localhost",
    ) -> None:
        self.tls = tls
        self.router = router
        self.functions = dict(functions)
        self.stage = stage
        self.domain_name = domain_name
        # Set while the gateway responds 503 to every request.
        self.outage = threading.Event()
        require_loopback_host(host)
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), _Handler)
        self._server.gateway = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="gateway",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        logger.info("Gateway listening on %s", self.url)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
