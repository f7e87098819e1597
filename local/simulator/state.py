"""Signature requests and callbacks kept in memory, guarded by one lock."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Signer:
    """One entry of `signatures[]`: who signs and how far they are."""

    sid: str
    account_email: str
    status_code: str = "OPEN"
    sequence: int = -1
    notify: bool = True


@dataclass
class SignatureRequest:
    """A signature request; `document_id` changes with every signature."""

    id: str
    title: str
    message: str
    document_id: str
    status_overall: str
    signatures: list[Signer]
    callback_urls: dict[str, str]
    routes: dict[str, str | None]
    created_at: float
    updated_at: float
    initiated: bool = False
    document_history: list[str] = field(default_factory=list)

    def find_signer(self, key: str) -> Signer | None:
        """Return the signer whose `sid` or `account_email` equals `key`."""
        for signer in self.signatures:
            if key in (signer.sid, signer.account_email):
                return signer
        return None


@dataclass
class Delivery:
    """One HTTP call of a callback, kept for `/_sim/callbacks` and demos.

    `scheduled_at` is when the try was due and `at` when its response arrived,
    both in simulated epoch seconds.
    """

    scheduled_at: float
    at: float
    status: int | None
    message: str
    duplicate: bool = False
    client_cert_sha256: str | None = None


@dataclass
class Callback:
    """One callback as Skribble's delivery log shows it, plus scheduling data.

    `url` is the URL as called: placeholders replaced, then HTML-encoded.
    """

    id: str
    signature_request_id: str
    type: str
    url_field: str
    url: str
    created_at: float
    updated_at: float
    next_attempt_at: float
    deadline: float
    state: str = "OPEN"
    attempts: int = 0
    messages: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    in_flight: bool = False
    duplicates_left: int = 0
    acknowledged_elsewhere: bool = False


class Store:
    """All records of one simulator run. Use `locked()` around every access."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.signature_requests: dict[str, SignatureRequest] = {}
        self.callbacks: dict[str, Callback] = {}

    @contextmanager
    def locked(self) -> Iterator[Store]:
        with self._lock:
            yield self

    def callbacks_of(self, signature_request_id: str) -> list[Callback]:
        with self._lock:
            return [
                callback
                for callback in self.callbacks.values()
                if callback.signature_request_id == signature_request_id
            ]
