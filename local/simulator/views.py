"""JSON shapes of the records, with field names as in Skribble's OpenAPI v2."""

from __future__ import annotations

from typing import Any

from .clock import iso_timestamp
from .state import Callback, SignatureRequest


def signature_response(
    request: SignatureRequest, owner: str, base_url: str
) -> dict[str, Any]:
    """Render a `SignatureResponse`."""
    emails = [signer.account_email for signer in request.signatures]
    document: dict[str, Any] = {
        "id": request.id,
        "title": request.title,
        "message": request.message,
        "document_id": request.document_id,
        "legislation": "ZERTES",
        "quality": "QES",
        "signing_url": f"{base_url}/view/{request.id}",
        "status_overall": request.status_overall,
        "business": "biz-simulator",
        "signatures": [
            {
                "sid": signer.sid,
                "account_email": signer.account_email,
                "status_code": signer.status_code,
                "sequence": signer.sequence,
                "notify": signer.notify,
            }
            for signer in request.signatures
        ],
        "cc_email_addresses": [],
        "attachments": [],
        "owner": owner,
        "read_access": [*emails, owner],
        "write_access": [owner],
        "created_at": iso_timestamp(request.created_at),
        "updated_at": iso_timestamp(request.updated_at),
    }
    document.update(request.callback_urls)
    return document


def callback_entry(callback: Callback, owner: str) -> dict[str, Any]:
    """Render one item of `SignatureCallbacksResponse`."""
    return {
        "signature_request_id": callback.signature_request_id,
        "type": callback.type,
        "state": callback.state,
        "url": callback.url,
        "attempts": callback.attempts,
        "messages": list(callback.messages),
        "owner": owner,
        "read_access": [owner],
        "write_access": [owner],
        "created_at": iso_timestamp(callback.created_at),
        "updated_at": iso_timestamp(callback.updated_at),
    }


def callback_detail(callback: Callback, owner: str) -> dict[str, Any]:
    """Render a callback for `/_sim/callbacks`: the log entry plus scheduling."""
    detail = callback_entry(callback, owner)
    detail.update(
        {
            "id": callback.id,
            "url_field": callback.url_field,
            "next_attempt_at": (
                iso_timestamp(callback.next_attempt_at)
                if callback.state == "OPEN"
                else None
            ),
            "deadline": iso_timestamp(callback.deadline),
            "acknowledged_elsewhere": callback.acknowledged_elsewhere,
            "deliveries": [
                {
                    "scheduled_at": iso_timestamp(delivery.scheduled_at),
                    "scheduled_at_epoch": delivery.scheduled_at,
                    "at": iso_timestamp(delivery.at),
                    "at_epoch": delivery.at,
                    "status": delivery.status,
                    "message": delivery.message,
                    "duplicate": delivery.duplicate,
                    "client_cert_sha256": delivery.client_cert_sha256,
                }
                for delivery in callback.deliveries
            ],
        }
    )
    return detail
