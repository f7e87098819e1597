"""A plain HTTP stand-in for API Gateway in front of the callback functions.

The simulator posts callbacks here. Each request becomes a REST proxy event
with Skribble's client certificate in `requestContext.identity.clientCert`,
and the receiver app of its route handles it, as in the deployed stack. While
`down` is set, every request gets 503 without reaching the receiver,
which is how tests stage an outage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509

from local.apigw_event import client_cert_context, rest_proxy_event
from skribble_receiver.config import CallbackSettings
from skribble_receiver.models import CallbackType
from skribble_receiver.receiver import create_app


class _Handler(BaseHTTPRequestHandler):
    server: _GatewayServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, headers, payload = self.server.gateway.handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    gateway: ReceiverGateway


class ReceiverGateway:
    """HTTP server on 127.0.0.1 that runs the receiver for each route."""

    def __init__(
        self,
        settings_for: Callable[..., CallbackSettings],
        client_cert: x509.Certificate,
    ) -> None:
        self._apps = {
            callback_type.value.lower().replace("_", "-"): create_app(
                settings_for(callback_type.value)
            )
            for callback_type in CallbackType
        }
        self._cert_context = client_cert_context(client_cert)
        self._lock = threading.Lock()
        self.down = False
        self.answers: list[int] = []
        self._server = _GatewayServer(("127.0.0.1", 0), _Handler)
        self._server.gateway = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ReceiverGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self.down:
            return self._answer(503, {"Retry-After": "600"}, b"")
        parts = urlsplit(target)
        segments = parts.path.split("/")
        if len(segments) < 3 or segments[1] != "callbacks":
            return self._answer(404, {}, b"")
        app = self._apps.get(segments[2])
        if app is None:
            return self._answer(404, {}, b"")
        proxy = "/".join(segments[3:])
        event = rest_proxy_event(
            method=method,
            path=parts.path,
            resource=f"/callbacks/{segments[2]}/{{proxy+}}"
            if proxy
            else f"/callbacks/{segments[2]}",
            path_parameters={"proxy": proxy} if proxy else None,
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=list(headers.items()),
            body=body,
            client_cert=self._cert_context,
        )
        context: Any = _Context()
        response = app.resolve(event, context)
        answer_headers = {
            name: str(value) for name, value in (response.get("headers") or {}).items()
        }
        payload = (response.get("body") or "").encode()
        return self._answer(response["statusCode"], answer_headers, payload)

    def _answer(
        self, status: int, headers: dict[str, str], payload: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.answers.append(status)
        return status, headers, payload


class _Context:
    function_name = "gateway"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:gateway"
    aws_request_id = "gateway-request"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class AcknowledgingServer:
    """HTTP server on 127.0.0.1 that returns 200 to everything and records
    nothing, like a proxy that acknowledges callbacks meant for the receiver."""

    def __init__(self) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                gateway.calls += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.calls = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AcknowledgingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
