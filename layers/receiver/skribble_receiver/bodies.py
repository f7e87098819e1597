"""Summarize a callback body without keeping personal data.

Skribble does not document the body of a callback, and it may name signers.
So only its SHA-256, its length and a few top-level JSON fields whose values
look like ids or states are kept.
"""

from __future__ import annotations

import hashlib
import json
import re

from skribble_receiver.models import BodySummary

# Field names that carry ids or states, never names or e-mail addresses.
_KEPT_FIELDS = frozenset(
    {
        "id",
        "signature_request_id",
        "document_id",
        "signature_id",
        "type",
        "callback_type",
        "state",
        "status",
        "status_overall",
        "event",
    }
)
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MAX_CONTENT_TYPE = 128
# DynamoDB numbers hold at most 38 significant digits; larger integers are
# dropped rather than failing the write.
_MAX_SAFE_INTEGER = 10**38


def summarize_body(body: bytes, content_type: str | None) -> BodySummary:
    """Return the hash, length and recognisable fields of a body."""
    fields: dict[str, str | int | bool] = {}
    if body:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            # Any body is accepted, deeply nested JSON included: the fields
            # are a convenience, and a body must never block its record.
            document = None
        if isinstance(document, dict):
            for name in sorted(_KEPT_FIELDS.intersection(document)):
                value = document[name]
                if (
                    isinstance(value, bool)
                    or (isinstance(value, int) and abs(value) < _MAX_SAFE_INTEGER)
                    or (isinstance(value, str) and _SAFE_VALUE.fullmatch(value))
                ):
                    fields[name] = value
    return BodySummary(
        sha256=hashlib.sha256(body).hexdigest(),
        length=len(body),
        content_type=content_type[:_MAX_CONTENT_TYPE] if content_type else None,
        fields=fields,
    )
