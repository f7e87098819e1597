"""Callback types, the stored callback record and the published event."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CallbackType(StrEnum):
    """Callback types as Skribble's delivery log names them."""

    SUCCESS = "SUCCESS"
    UPDATE = "UPDATE"
    ERROR = "ERROR"
    START_SIGN = "START_SIGN"
    INITIATE = "INITIATE"
    IDENT_ERROR = "IDENT_ERROR"


class EventStatus(StrEnum):
    """Whether a record's EventBridge event has been published."""

    PENDING = "PENDING"
    PUBLISHED = "PUBLISHED"


class RecordSource(StrEnum):
    """Origin of a record: a live delivery or the audit."""

    RECEIVER = "RECEIVER"
    AUDIT = "AUDIT"


EVENT_DETAIL_TYPE_PREFIX = "Skribble Callback "


def event_detail_type(callback_type: CallbackType) -> str:
    """Return the EventBridge detail-type of a callback type's event."""
    return EVENT_DETAIL_TYPE_PREFIX + callback_type.value


class CallbackKey(BaseModel):
    """Identity of one logical callback: one record and one event each."""

    model_config = ConfigDict(frozen=True)

    route_type: CallbackType
    signature_request_id: str
    document_id: str | None = None
    signature_id: str | None = None
    # The callback type, on routes that several types share, when it is
    # known: from the body or from Skribble's log. It keeps two callbacks on
    # one URL (INITIATE and START_SIGN, say) in two records.
    type_in_key: CallbackType | None = None

    @property
    def pk(self) -> str:
        return f"SR#{self.signature_request_id}"

    @property
    def sk(self) -> str:
        parts = [
            "CALLBACK",
            self.route_type.value,
            self.document_id or "-",
            self.signature_id or "-",
        ]
        if self.type_in_key is not None:
            parts.append(self.type_in_key.value)
        return "#".join(parts)

    @property
    def route_is_ambiguous(self) -> bool:
        """Return whether several callback types may arrive on this key.

        SKRIBBLE_SIGNATURE_ID is replaced only after a signature, so the
        update route without one may carry START_SIGN or INITIATE, and the
        error route may carry ERROR or IDENT_ERROR.
        """
        if self.route_type is CallbackType.UPDATE:
            return self.signature_id is None
        return self.route_type is CallbackType.ERROR

    @property
    def callback_id(self) -> str:
        """Return a stable id that consumers can use to drop repeated events."""
        return hashlib.sha256(f"{self.pk}|{self.sk}".encode()).hexdigest()[:32]


class ClientCertificateInfo(BaseModel):
    """Facts about the client certificate of an accepted delivery."""

    model_config = ConfigDict(frozen=True)

    subject_dn: str
    issuer_dn: str
    serial_number: str
    not_after: datetime
    sha256: str
    public_key_sha256: str
    extended_key_usages: tuple[str, ...]
    client_auth: bool


class BodySummary(BaseModel):
    """Summary of a callback body: its hash, length and safe fields."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    length: int
    content_type: str | None = None
    fields: dict[str, str | int | bool] = Field(default_factory=dict)


class Delivery(BaseModel):
    """Facts of one HTTP delivery, as recorded on the callback record."""

    model_config = ConfigDict(frozen=True)

    method: Literal["GET", "POST"]
    id_source: Literal["path", "query"]
    signature_id_present: bool
    received_at: datetime
    request_id: str


class CallbackEventDetail(BaseModel):
    """The detail of the EventBridge event published once per callback."""

    model_config = ConfigDict(frozen=True)

    callback_id: str
    callback_type: CallbackType
    type_confirmed: bool
    route_type: CallbackType
    signature_request_id: str
    document_id: str | None
    signature_id: str | None
    first_received_at: datetime
    recovered: bool
    record_source: RecordSource
    body: BodySummary | None
    signature_request_status: str | None = None
