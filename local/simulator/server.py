"""HTTP server on loopback that dispatches to the `/v2` and `/_sim` routes."""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .admin_api import AdminApi
from .clock import SimClock
from .config import SimulatorConfig
from .delivery import DeliveryEngine
from .faults import Faults
from .http_types import BadRequest, Request, Response, problem
from .jwt import TokenIssuer
from .lifecycle import Lifecycle, StepError
from .skribble_api import SkribbleApi
from .state import Store

logger = logging.getLogger("local.simulator.server")

# Maximum request body size in bytes; the driver API sends small JSON.
MAX_BODY_BYTES = 1_000_000

CompiledRoute = tuple[str, re.Pattern[str], Callable[..., Response]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: Simulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.app = app


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "SkribbleSimulator"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._send(problem(400, "invalid Content-Length header", self.path))
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(problem(413, "request body too large", self.path))
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        self._send(self.server.app.dispatch(request))

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http request %s", format % args)


class Simulator:
    """The whole simulator: state, API routes, HTTP server and delivery engine."""

    def __init__(self, config: SimulatorConfig) -> None:
        config.validate()
        self.config = config

        self.clock = SimClock(config.time_scale)
        self.store = Store()
        self.faults = Faults(callbacks_get_405=config.callbacks_get_405)
        self.tokens = TokenIssuer(config.token_ttl)
        self.delivery = DeliveryEngine(self.store, self.clock, config)

        self.lifecycle = Lifecycle(
            self.store, self.clock, self.faults, config, self.clock.notify
        )
        self.skribble_api = SkribbleApi(
            self.store,
            self.tokens,
            self.faults,
            self.lifecycle,
            (config.username, config.api_key),
            lambda: self.base_url,
        )

        admin = AdminApi(
            self.store,
            self.lifecycle,
            self.clock,
            self.faults,
            self.tokens,
            self.delivery.certificates,
            config.username,
            lambda: self.base_url,
        )

        self._routes: list[CompiledRoute] = [
            (method, re.compile(pattern + r"/?\Z"), handler)
            for method, pattern, handler in [
                *self.skribble_api.routes(),
                *admin.routes(),
            ]
        ]

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator is not started: call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind the port, then serve and deliver in background threads."""
        self._server = _Server((self.config.host, self.config.port), self)
        # A short poll interval keeps stop() quick; shutdown waits for one poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="http-server",
            daemon=True,
        )
        self._thread.start()
        self.delivery.start()
        logger.info("simulator listening url=%s", self.base_url)

    def stop(self) -> None:
        """Stop serving and delivering; safe to call more than once."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.delivery.stop()
        logger.info("simulator stopped")

    def dispatch(self, request: Request) -> Response:
        """Route a request and turn expected errors into problem responses."""
        allowed: list[str] = []
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            return self._call(handler, request, match.groupdict())
        if allowed:
            response = problem(
                405,
                f"{request.method} is not allowed here: use {', '.join(allowed)}",
                request.path,
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return problem(404, f"no route for {request.path}", request.path)

    def _call(
        self,
        handler: Callable[..., Response],
        request: Request,
        params: dict[str, str],
    ) -> Response:
        if request.path.startswith("/v2/"):
            self.skribble_api.before(request)
        try:
            return handler(request, **params)
        except BadRequest as exc:
            return self._rejected(request, 400, str(exc))
        except StepError as exc:
            return self._rejected(request, exc.status, str(exc))
        except Exception:
            logger.exception(
                "request failed method=%s path=%s", request.method, request.path
            )
            return problem(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                "internal error in the simulator: see its log",
                request.path,
            )

    @staticmethod
    def _rejected(request: Request, status: int, detail: str) -> Response:
        logger.info(
            "request rejected method=%s path=%s status=%d detail=%s",
            request.method,
            request.path,
            status,
            detail,
        )
        return problem(status, detail, request.path)
