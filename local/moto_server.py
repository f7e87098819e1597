"""moto in server mode on loopback: the embedded stand-in for AWS.

moto's backends keep state in plain Python objects without locks, so two
concurrent UpdateItem calls on one item can interleave and lose an `ADD`.
DynamoDB applies each single-item write atomically, and the receiver relies on
that. This server therefore handles one DynamoDB request at a time, behind a
lock. Other services are not serialized: an SQS long poll keeps its request
open for seconds and must not hold up the table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _Serialized:
    """WSGI middleware that runs one DynamoDB request at a time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        # DynamoDB's JSON protocol names the operation in X-Amz-Target.
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return list(self._app(environ, start_response))
        with self._lock:
            # The body is read inside the lock, because moto may build the
            # response lazily while the iterable is consumed.
            return list(self._app(environ, start_response))


class MotoServer:
    """A moto server on a loopback port, started and stopped in-process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"moto must listen on loopback, not {host!r}")
        self._server: BaseWSGIServer = make_server(
            host,
            port,
            _Serialized(DomainDispatcherApplication(create_backend_app)),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        if ":" in text:
            text = f"[{text}]"
        return f"http://{text}:{port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
