"""Steps of a signature request's life and the callbacks each step fires.

Which step fires which type follows Skribble's callback type descriptions:

- initiate: INITIATE (the v3 draft-to-open step; v2 has no such call).
- start-sign: START_SIGN for that signer.
- sign: UPDATE with the signer's signature id; when every signer has signed,
  SUCCESS as well. The document id changes with each signature.
- decline, withdraw: ERROR.
- ident-error: IDENT_ERROR; the signer may still sign afterwards.

NOTE: whether Skribble also fires UPDATE for the last signature (besides
SUCCESS) is not documented; the simulator fires both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .callback_url import fill_placeholders, html_encode, require_loopback_url
from .clock import SimClock
from .config import CALLBACK_TYPES, URL_FIELDS, SimulatorConfig, parse_route
from .faults import Faults
from .state import Callback, SignatureRequest, Signer, Store, new_id

logger = logging.getLogger("local.simulator.lifecycle")


class StepError(Exception):
    """A step cannot run on the signature request in its current state."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Lifecycle:
    """Apply driver steps to the store and queue the callbacks they fire."""

    def __init__(
        self,
        store: Store,
        clock: SimClock,
        faults: Faults,
        config: SimulatorConfig,
        on_new_callback: Callable[[], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._faults = faults
        self._config = config
        self._on_new_callback = on_new_callback
        self.duplicates = config.duplicates

    def create(self, payload: dict[str, Any]) -> SignatureRequest:
        """Create a signature request from the `/_sim/signature-requests` body."""
        title = payload.get("title", "Simulated contract")
        signers = payload.get("signatures", payload.get("signers"))
        if not isinstance(signers, list) or not signers:
            raise StepError(400, "missing 'signatures': give a list of signer emails")
        signatures = [Signer(sid=new_id(), account_email=_email_of(s)) for s in signers]
        callback_urls: dict[str, str] = {}
        for url_field in URL_FIELDS:
            url = payload.get(url_field)
            if url is None:
                continue
            if not isinstance(url, str):
                raise StepError(400, f"'{url_field}' must be a string URL")
            try:
                require_loopback_url(url)
            except ValueError as exc:
                raise StepError(400, str(exc)) from exc
            callback_urls[url_field] = url
        routes = dict(self._config.routes)
        routes.update(_parse_routes(payload.get("callback_routes", {})))
        now = self._clock.now()
        request = SignatureRequest(
            id=new_id(),
            title=str(title),
            message=str(payload.get("message", "Please sign this document!")),
            document_id=new_id(),
            status_overall="DRAFT" if payload.get("draft") else "OPEN",
            signatures=signatures,
            callback_urls=callback_urls,
            routes=routes,
            created_at=now,
            updated_at=now,
        )
        request.document_history.append(request.document_id)
        with self._store.locked() as store:
            store.signature_requests[request.id] = request
        logger.info(
            "signature request created sr=%s signers=%d status=%s",
            request.id,
            len(signatures),
            request.status_overall,
        )
        return request

    def initiate(self, request_id: str) -> list[Callback]:
        with self._store.locked():
            request = self._get(request_id)
            if request.initiated or request.status_overall not in ("DRAFT", "OPEN"):
                raise StepError(
                    409, f"signature request {request_id} cannot be initiated twice"
                )
            request.initiated = True
            request.status_overall = "OPEN"
            return self._fire(request, ["INITIATE"], signature_id=None)

    def start_sign(self, request_id: str, signer_key: str | None) -> list[Callback]:
        with self._store.locked():
            request = self._get_open(request_id)
            self._open_signer(request, signer_key)
            return self._fire(request, ["START_SIGN"], signature_id=None)

    def sign(self, request_id: str, signer_key: str | None) -> list[Callback]:
        with self._store.locked():
            request = self._get_open(request_id)
            signer = self._open_signer(request, signer_key)
            signer.status_code = "SIGNED"
            # Documents are immutable: every signature produces a new document.
            request.document_id = new_id()
            request.document_history.append(request.document_id)
            types = ["UPDATE"]
            if all(s.status_code == "SIGNED" for s in request.signatures):
                request.status_overall = "SIGNED"
                types.append("SUCCESS")
            return self._fire(request, types, signature_id=signer.sid)

    def decline(self, request_id: str, signer_key: str | None) -> list[Callback]:
        with self._store.locked():
            request = self._get_open(request_id)
            signer = self._open_signer(request, signer_key)
            signer.status_code = "DECLINED"
            request.status_overall = "DECLINED"
            return self._fire(request, ["ERROR"], signature_id=None)

    def withdraw(self, request_id: str) -> list[Callback]:
        with self._store.locked():
            request = self._get(request_id)
            if request.status_overall not in ("DRAFT", "OPEN"):
                raise StepError(
                    409,
                    f"signature request {request_id} is {request.status_overall}: "
                    "only DRAFT or OPEN requests can be withdrawn",
                )
            for signer in request.signatures:
                if signer.status_code == "OPEN":
                    signer.status_code = "WITHDRAWN"
            request.status_overall = "WITHDRAWN"
            return self._fire(request, ["ERROR"], signature_id=None)

    def ident_error(self, request_id: str, signer_key: str | None) -> list[Callback]:
        with self._store.locked():
            request = self._get_open(request_id)
            self._open_signer(request, signer_key)
            return self._fire(request, ["IDENT_ERROR"], signature_id=None)

    def _get(self, request_id: str) -> SignatureRequest:
        request = self._store.signature_requests.get(request_id)
        if request is None:
            raise StepError(404, f"signature request {request_id} not found")
        return request

    def _get_open(self, request_id: str) -> SignatureRequest:
        request = self._get(request_id)
        if request.status_overall != "OPEN":
            raise StepError(
                409,
                f"signature request {request_id} is {request.status_overall}: "
                "this step needs status OPEN",
            )
        return request

    def _open_signer(self, request: SignatureRequest, key: str | None) -> Signer:
        if key is None:
            open_signers = [s for s in request.signatures if s.status_code == "OPEN"]
            if len(open_signers) != 1:
                raise StepError(
                    400,
                    f"missing 'signer' while {len(open_signers)} signers are OPEN: "
                    "give the signer's sid or account_email",
                )
            return open_signers[0]
        signer = request.find_signer(key)
        if signer is None:
            raise StepError(
                404,
                f"signer not found in signature request {request.id}: give the "
                "sid or account_email of one of its signatures",
            )
        if signer.status_code != "OPEN":
            raise StepError(
                409, f"signer {signer.sid} is {signer.status_code}: expected OPEN"
            )
        return signer

    def _fire(
        self,
        request: SignatureRequest,
        types: list[str],
        signature_id: str | None,
    ) -> list[Callback]:
        now = self._clock.now()
        request.updated_at = now
        fired: list[Callback] = []
        for callback_type in types:
            url_field = request.routes.get(callback_type)
            template = request.callback_urls.get(url_field) if url_field else None
            if url_field is None or template is None:
                logger.info(
                    "callback %s sr=%s skipped: no URL field routed or URL set",
                    callback_type,
                    request.id,
                )
                continue
            url = html_encode(
                fill_placeholders(
                    template,
                    request.id,
                    request.document_id,
                    signature_id if callback_type == "UPDATE" else None,
                )
            )
            callback = Callback(
                id=new_id(),
                signature_request_id=request.id,
                type=callback_type,
                url_field=url_field,
                url=url,
                created_at=now,
                updated_at=now,
                next_attempt_at=now,
                deadline=now + self._config.retry_window,
                duplicates_left=self.duplicates - 1,
            )
            if self._faults.take("acknowledge_elsewhere"):
                callback.state = "COMPLETED"
                callback.attempts = 1
                callback.acknowledged_elsewhere = True
                logger.info(
                    "callback %s sr=%s id=%s acknowledged elsewhere: not sent",
                    callback_type,
                    request.id,
                    callback.id,
                )
            self._store.callbacks[callback.id] = callback
            fired.append(callback)
        if fired:
            self._on_new_callback()
        return fired


def _email_of(entry: object) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("account_email"), str):
        return str(entry["account_email"])
    raise StepError(
        400,
        f"invalid signer of type {type(entry).__name__}: give an email string "
        "or {'account_email': ...}",
    )


def _parse_routes(routes: object) -> dict[str, str | None]:
    if not isinstance(routes, dict):
        raise StepError(400, "'callback_routes' must map TYPE to a URL field or null")
    parsed: dict[str, str | None] = {}
    for callback_type, url_field in routes.items():
        if callback_type not in CALLBACK_TYPES:
            raise StepError(400, f"unknown callback type {callback_type!r}")
        try:
            key, value = parse_route(f"{callback_type}={url_field or 'none'}")
        except ValueError as exc:
            raise StepError(400, str(exc)) from exc
        parsed[key] = value
    return parsed
