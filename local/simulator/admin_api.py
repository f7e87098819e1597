"""The driver API under `/_sim`: steps, faults, clock and the callback log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .client_certificate import ClientCertificates
from .clock import SimClock, iso_timestamp
from .faults import Faults
from .http_types import BadRequest, Request, Response, json_response
from .jwt import TokenIssuer
from .lifecycle import Lifecycle
from .state import Callback, Store
from .views import callback_detail, signature_response

Route = tuple[str, str, Callable[..., Response]]

logger = logging.getLogger("local.simulator.admin")


class AdminApi:
    """Route handlers for `/_sim`."""

    def __init__(
        self,
        store: Store,
        lifecycle: Lifecycle,
        clock: SimClock,
        faults: Faults,
        tokens: TokenIssuer,
        certificates: ClientCertificates,
        owner: str,
        base_url: Callable[[], str],
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._clock = clock
        self._faults = faults
        self._tokens = tokens
        self._certificates = certificates
        self._owner = owner
        self._base_url = base_url

    def routes(self) -> list[Route]:
        sr = r"/_sim/signature-requests/(?P<request_id>[^/]+)"
        return [
            ("GET", r"/_sim/health", self.health),
            ("POST", r"/_sim/signature-requests", self.create),
            ("POST", sr + "/initiate", self.initiate),
            ("POST", sr + "/start-sign", self.start_sign),
            ("POST", sr + "/sign", self.sign),
            ("POST", sr + "/decline", self.decline),
            ("POST", sr + "/withdraw", self.withdraw),
            ("POST", sr + "/ident-error", self.ident_error),
            ("GET", r"/_sim/callbacks", self.callbacks),
            ("GET", r"/_sim/faults", self.faults),
            ("POST", r"/_sim/faults", self.faults),
            ("GET", r"/_sim/clock", self.clock),
            ("POST", r"/_sim/clock", self.clock),
            ("GET", r"/_sim/client-certificate", self.client_certificate),
            ("POST", r"/_sim/client-certificate", self.client_certificate),
        ]

    def health(self, request: Request) -> Response:
        return json_response(
            {
                "status": "ok",
                "base_url": self._base_url(),
                "now": iso_timestamp(self._clock.now()),
                "time_scale": self._clock.scale,
            }
        )

    def create(self, request: Request) -> Response:
        created = self._lifecycle.create(request.json())
        return json_response(
            {
                "id": created.id,
                "document_id": created.document_id,
                "signature_request": self._render(created.id),
            },
            status=201,
        )

    def initiate(self, request: Request, request_id: str) -> Response:
        fired = self._lifecycle.initiate(request_id)
        return self._step_result(request_id, fired)

    def start_sign(self, request: Request, request_id: str) -> Response:
        fired = self._lifecycle.start_sign(request_id, _signer(request))
        return self._step_result(request_id, fired)

    def sign(self, request: Request, request_id: str) -> Response:
        fired = self._lifecycle.sign(request_id, _signer(request))
        return self._step_result(request_id, fired)

    def decline(self, request: Request, request_id: str) -> Response:
        fired = self._lifecycle.decline(request_id, _signer(request))
        return self._step_result(request_id, fired)

    def withdraw(self, request: Request, request_id: str) -> Response:
        fired = self._lifecycle.withdraw(request_id)
        return self._step_result(request_id, fired)

    def ident_error(self, request: Request, request_id: str) -> Response:
        fired = self._lifecycle.ident_error(request_id, _signer(request))
        return self._step_result(request_id, fired)

    def callbacks(self, request: Request) -> Response:
        wanted = request.query.get("signature_request_id")
        with self._store.locked() as store:
            items = sorted(store.callbacks.values(), key=lambda item: item.created_at)
            details = [
                callback_detail(callback, self._owner)
                for callback in items
                if wanted is None or callback.signature_request_id == wanted
            ]
        return json_response(details)

    def faults(self, request: Request) -> Response:
        """Show or change faults.

        Besides the `FaultSettings` fields, the body may hold `reset: true`
        (clear all faults first), `expire_tokens: true` (every token issued so
        far gets 401), `token_ttl` (real seconds for new tokens) and
        `duplicates` (HTTP calls per completed callback from now on).
        """
        if request.method == "GET":
            return json_response(self._fault_state(self._faults.snapshot()))
        changes = request.json()
        if changes.pop("reset", False):
            self._faults.reset()
        if changes.pop("expire_tokens", False):
            self._tokens.expire_all()
        if "token_ttl" in changes:
            self._tokens.set_ttl(_number(changes.pop("token_ttl"), "token_ttl", 0))
        if "duplicates" in changes:
            duplicates = _number(changes.pop("duplicates"), "duplicates", 1)
            self._lifecycle.duplicates = int(duplicates)
        try:
            settings = self._faults.update(changes)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        return json_response(self._fault_state(settings))

    def clock(self, request: Request) -> Response:
        """Show the clock, or change it with `time_scale` and `advance_seconds`."""
        if request.method == "POST":
            changes = request.json()
            if "time_scale" in changes:
                scale = _number(changes["time_scale"], "time_scale", 0)
                if scale == 0:
                    raise BadRequest("time_scale must be greater than 0")
                self._clock.set_scale(scale)
            if "advance_seconds" in changes:
                self._clock.advance(
                    _number(changes["advance_seconds"], "advance_seconds", 0)
                )
        now = self._clock.now()
        return json_response(
            {
                "now": iso_timestamp(now),
                "now_epoch": now,
                "time_scale": self._clock.scale,
            }
        )

    def client_certificate(self, request: Request) -> Response:
        """Show or switch the client certificate that callback POSTs present.

        The body names a configured certificate, `{"certificate": "next"}`, or
        gives files, `{"cert": "/path/chain.pem", "key": "/path/key.pem"}`.
        Calls already in flight finish with the certificate they started with.
        """
        if request.method == "POST":
            changes = request.json()
            name = changes.get("certificate")
            cert, key = changes.get("cert"), changes.get("key")
            try:
                if isinstance(name, str) and cert is None and key is None:
                    presented = self._certificates.select_named(name)
                elif name is None and isinstance(cert, str) and isinstance(key, str):
                    presented = self._certificates.select_files(Path(cert), Path(key))
                else:
                    raise ValueError(
                        'send {"certificate": NAME} or {"cert": PATH, "key": PATH}'
                    )
            except ValueError as exc:
                raise BadRequest(str(exc)) from exc
            logger.info(
                "client certificate switched name=%s sha256=%s",
                presented.name,
                presented.sha256,
            )
        return json_response(
            {
                **self._certificates.current().describe(),
                "available": self._certificates.names,
            }
        )

    def _fault_state(self, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            **settings,
            "token_ttl": self._tokens.ttl,
            "duplicates": self._lifecycle.duplicates,
        }

    def _render(self, request_id: str) -> dict[str, Any]:
        with self._store.locked() as store:
            found = store.signature_requests[request_id]
            return signature_response(found, self._owner, self._base_url())

    def _step_result(self, request_id: str, fired: list[Callback]) -> Response:
        return json_response(
            {
                "signature_request": self._render(request_id),
                "callbacks": [
                    {"id": callback.id, "type": callback.type, "url": callback.url}
                    for callback in fired
                ],
            }
        )


def _signer(request: Request) -> str | None:
    signer = request.json().get("signer")
    if signer is not None and not isinstance(signer, str):
        raise BadRequest("'signer' must be the signer's sid or account_email")
    return signer


def _number(value: object, name: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name} must be a number, got {value!r}")
    if value < minimum:
        raise BadRequest(f"{name} must be at least {minimum}, got {value}")
    return float(value)
