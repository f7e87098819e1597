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
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509

from local.apigw_event import client_cert_context, rest_proxy_event
from local.functions import FunctionError, LocalFunction
from local.request_body import BodyRejected, declared_length, read_body
from local.routing import RouteMatch, Router
from local.simulator.config import require_loopback_host

logger = logging.getLogger("local.gateway")

HANDSHAKE_TIMEOUT_SECONDS = 10.0
# Seconds the gateway reads and drops the rest of a request it rejected.
DISCARD_SECONDS = 2.0
# The methods an API Gateway REST API has resource methods for; `ANY` stands
# for all of them.
API_GATEWAY_METHODS = frozenset(
    ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
)
_JSON = "application/json"
# Reason words and codes such as "recorded" or "Missing Authentication Token".
_LOGGABLE_REASON = re.compile(r"[A-Za-z][A-Za-z0-9_ ]{0,63}")


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
    # Set when the gateway responds before reading the whole request.
    discard_input = False

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

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.command not in API_GATEWAY_METHODS:
            # NOTE: how a deployed API responds to TRACE, CONNECT or an unknown
            # method is not verified. This is its response to a method that no
            # resource defines.
            self._reject(403, "Missing Authentication Token")
            return False
        return True

    def handle_expect_100(self) -> bool:
        # Check the length before "100 Continue", so that a client such as
        # curl does not send a body that is rejected anyway.
        try:
            declared_length(self.headers)
        except BodyRejected as rejection:
            self._reject(rejection.status, rejection.message)
            return False
        return super().handle_expect_100()

    def send_error(
        self, code: int, message: str | None = None, explain: str | None = None
    ) -> None:
        # The standard library's HTML error page, in API Gateway's JSON shape.
        # `message` can quote the raw request line, so it is not used.
        # A request line that failed to parse leaves request_version at
        # HTTP/0.9, which would drop the status line and headers.
        self.request_version = self.protocol_version
        self._reject(code, HTTPStatus(code).phrase)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The standard access line contains the raw path and query.
        # `_log_access` writes one with the matched resource instead.
        pass

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http " + format, *args)

    def finish(self) -> None:
        super().finish()
        if self.discard_input:
            _discard_input(self.connection)

    def _reject(self, status: int, message: str) -> None:
        """Send an error in API Gateway's shape and close the connection."""
        started = time.monotonic()
        self.close_connection = True
        self.discard_input = True
        status, headers, body = _message(status, message)
        self._send(status, headers, body)
        self._log_access(self._resource(), "(gateway)", status, message, started)

    def _proxy(self) -> None:
        started = time.monotonic()
        gateway = self.server.gateway
        route = gateway.router.match(self.command, urlsplit(self.path).path)
        resource = "(no route)" if route is None else route.resource
        try:
            body = read_body(self.headers, self.rfile)
        except BodyRejected as rejection:
            self._reject(rejection.status, rejection.message)
            return
        except (EOFError, OSError) as exc:
            self.close_connection = True
            logger.warning(
                "%s %s -> client stopped sending the body: %s; no function called",
                self.command,
                resource,
                exc,
            )
            return
        if gateway.outage.is_set():
            status, headers, answer = _message(503, "Service Unavailable")
            target = "(outage switched on)"
        elif route is None:
            status, headers, answer = _message(403, "Missing Authentication Token")
            target = "(no route)"
        else:
            status, headers, answer = self._invoke(route, body)
            target = route.function
        self._send(status, headers, answer)
        self._log_access(resource, target, status, _reason(answer), started)

    def _invoke(
        self, route: RouteMatch, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        gateway = self.server.gateway
        parts = urlsplit(self.path)
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
            return _message(502, "Internal server error")
        status, headers, answer = _response_from(result)
        headers.append(("x-amzn-RequestId", request_id))
        return status, headers, answer

    def _resource(self) -> str:
        """Return the matched resource path, never the raw path, for logs."""
        path = getattr(self, "path", None)
        command = getattr(self, "command", None)
        if not path or not command:
            return "-"
        route = self.server.gateway.router.match(command, urlsplit(path).path)
        return "(no route)" if route is None else route.resource

    def _log_access(
        self, resource: str, target: str, status: int, reason: str, started: float
    ) -> None:
        # Like the template's access log, which logs $context.resourcePath:
        # the raw path and query can hold personal data and tokens.
        logger.info(
            "%s %s -> %s -> %d %s (%d ms)",
            getattr(self, "command", None) or "-",
            resource,
            target,
            status,
            reason,
            (time.monotonic() - started) * 1000,
        )

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _discard_input(connection: socket.socket) -> None:
    """Read and drop what the client still sends, for DISCARD_SECONDS at most.

    Closing a socket with unread input makes the kernel send a TCP reset,
    which can reach the client before it has read the response.
    """
    deadline = time.monotonic() + DISCARD_SECONDS
    with contextlib.suppress(OSError):
        while (remaining := deadline - time.monotonic()) > 0:
            connection.settimeout(remaining)
            if not connection.recv(65536):
                return


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


def _reason(body: bytes) -> str:
    """Return the status, error or message field of a JSON response, for logs.

    Only a short word or code is returned: a field that could carry request
    data, such as an e-mail address, is left out.
    """
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    for key in ("status", "error", "message"):
        value = document.get(key)
        if isinstance(value, str) and _LOGGABLE_REASON.fullmatch(value):
            return value
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
