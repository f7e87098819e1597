"""Plain HTTP control port of the local gateway, on loopback only.

`GET /_local/health` reports that the stack runs, and how many of each
function's workers finished their init phase. `GET /_local/outage` shows
and `POST /_local/outage` with `{"enabled": true}` or `{"enabled": false}`
switches an outage, during which the gateway returns 503 for every callback
and calls no function, as when the receiver is down. The demo uses it to show
Skribble's retries.

`POST /2015-03-31/functions/<LogicalId>/invocations` with an event as the body
runs that function's worker once and returns its result, in the shape of
Lambda's synchronous Invoke API. The demo runs the scheduled AuditFunction
this way, with the environment template.yaml gives it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.functions import FunctionError
from local.gateway import Gateway
from local.request_body import BodyRejected, declared_length
from local.simulator.config import require_loopback_host

logger = logging.getLogger("local.gateway")

MAX_BODY_BYTES = 10_000
# Lambda's Invoke API path; the function name is the template's logical id.
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[A-Za-z0-9]+)/invocations$")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gateway: Gateway


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/_local/health":
            self._send(200, self._health())
        elif self.path == "/_local/outage":
            self._send(200, self._outage_state())
        else:
            self._send(404, {"error": f"no route for GET {self.path}"})

    def do_POST(self) -> None:
        invoke = _INVOKE_PATH.match(self.path)
        if self.path != "/_local/outage" and invoke is None:
            self._send(404, {"error": f"no route for POST {self.path}"})
            return
        try:
            length = declared_length(self.headers)
        except BodyRejected as rejection:
            self.close_connection = True
            self._send(rejection.status, {"error": rejection.message})
            return
        if length is None:
            self.close_connection = True
            self._send(411, {"error": "chunked body: send it with a Content-Length"})
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, {"error": "body too large"})
            return
        try:
            document = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"error": "body is not JSON: send a JSON object"})
            return
        if invoke is not None:
            self._invoke(invoke["name"], document)
        else:
            self._switch_outage(document)

    def _switch_outage(self, document: Any) -> None:
        enabled = document.get("enabled") if isinstance(document, dict) else None
        if not isinstance(enabled, bool):
            self._send(400, {"error": "missing 'enabled': send true or false"})
            return
        outage = self.server.gateway.outage
        if enabled:
            outage.set()
            logger.warning("Outage switched on: every callback gets 503")
        else:
            outage.clear()
            logger.info("Outage switched off: callbacks reach the functions again")
        self._send(200, self._outage_state())

    def _invoke(self, name: str, event: Any) -> None:
        """Run one function on `event`; reply as Lambda's Invoke API does."""
        function = self.server.gateway.functions.get(name)
        if function is None:
            known = ", ".join(sorted(self.server.gateway.functions))
            self._send(
                404,
                {
                    "Type": "User",
                    "message": f"Function not found: {name}. Known: {known}",
                },
                [("x-amzn-ErrorType", "ResourceNotFoundException")],
            )
            return
        logger.info("Invoking %s from the control port", name)
        try:
            result = function.invoke(event)
        except FunctionError as exc:
            logger.error("Function failed: %s", exc)
            # Lambda returns 200 and flags the failure in a header.
            self._send(
                200,
                {"errorType": "FunctionError", "errorMessage": str(exc)},
                [("X-Amz-Function-Error", "Unhandled")],
            )
            return
        self._send(200, result)

    def _health(self) -> dict[str, Any]:
        functions = self.server.gateway.functions
        return {
            "status": "ok",
            "workers": {
                name: {"ready": function.ready_workers, "total": function.workers}
                for name, function in functions.items()
            },
        }

    def _outage_state(self) -> dict[str, Any]:
        return {"enabled": self.server.gateway.outage.is_set()}

    def _send(
        self,
        status: int,
        document: Any,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("admin " + format, *args)


class GatewayAdmin:
    """The control port's HTTP server."""

    def __init__(self, gateway: Gateway, host: str = "127.0.0.1", port: int = 0):
        require_loopback_host(host)
        self._server = _Server((host, port), _Handler)
        self._server.gateway = gateway
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="gateway-admin",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
