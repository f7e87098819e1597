"""A small HTTPS server on loopback that requires a client certificate.

Tests queue the responses it returns and read the requests it received.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .pki import PkiFiles


@dataclass
class ReceivedCall:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    client_subject: str | None
    received_at: float


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        peer: Any = self.connection.getpeercert()  # type: ignore[attr-defined]
        subject = None
        if peer:
            for rdn in peer.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        subject = value
        receiver = self.server.receiver
        answer = receiver.next_answer()
        if answer.delay_seconds:
            time.sleep(answer.delay_seconds)
        receiver.record(
            ReceivedCall(
                method=self.command,
                target=self.path,
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
                client_subject=subject,
                received_at=time.monotonic(),
            )
        )
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: CallbackReceiver


class CallbackReceiver:
    """HTTPS server on 127.0.0.1 that records calls and returns queued responses."""

    def __init__(self, pki: PkiFiles) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        context.load_verify_locations(str(pki.ca_cert))
        context.verify_mode = ssl.CERT_REQUIRED
        self._server = _ReceiverServer(("127.0.0.1", 0), _Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.receiver = self
        self._lock = threading.Lock()
        self._answers: deque[Answer] = deque()
        self.default_answer = Answer()
        self.calls: list[ReceivedCall] = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def queue(self, *answers: Answer) -> None:
        with self._lock:
            self._answers.extend(answers)

    def next_answer(self) -> Answer:
        with self._lock:
            return self._answers.popleft() if self._answers else self.default_answer

    def record(self, call: ReceivedCall) -> None:
        with self._lock:
            self.calls.append(call)

    def received(self) -> list[ReceivedCall]:
        with self._lock:
            return list(self.calls)
