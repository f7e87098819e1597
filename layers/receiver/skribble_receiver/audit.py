"""Audit of one signature request: Skribble's delivery log against the table.

Each entry of Skribble's log is mapped to the record key the receiver used
for the same URL, then classified:

- COMPLETED and recorded, or RESIGNATED/OPEN but recorded: accounted for.
- RESIGNATED and not recorded: missed. The record is written from Skribble's
  data and its event published, flagged as recovered.
- OPEN with many failed attempts: delivery degraded.
- COMPLETED but not recorded: another endpoint returned 2xx (anomaly).
- Recorded but absent from the log: anomaly.

Records whose event is still PENDING after a grace period are published, and
records whose type the receiver could not confirm get the type from the log.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from skribble_receiver.aws import Deadline
from skribble_receiver.callback_url import parse_callback_ids
from skribble_receiver.errors import CallbackError, MalformedCallback
from skribble_receiver.events import EventPublisher
from skribble_receiver.models import (
    CallbackEventDetail,
    CallbackKey,
    CallbackType,
    EventStatus,
    RecordSource,
)
from skribble_receiver.observability import logger
from skribble_receiver.skribble_api import (
    CallbackLogEntry,
    SignatureRequestSummary,
    SkribbleClient,
)
from skribble_receiver.stored_callbacks import (
    AuditRecords,
    RecoveredCallback,
    StoredCallback,
)

ROUTE_BY_SEGMENT = {
    callback_type.value.lower().replace("_", "-"): callback_type
    for callback_type in CallbackType
}
# A record created this close to the moment the log was read may belong to a
# delivery that the log did not show yet. So it is not reported as absent.
LOG_RACE_MARGIN = timedelta(seconds=30)
# A recovered callback's publish lease: long enough to publish one event.
RECOVERY_PUBLISH_LEASE = timedelta(seconds=30)


class Verdict(StrEnum):
    """Result of comparing one callback between Skribble's log and the table."""

    DELIVERED = "DELIVERED"
    MISSED = "MISSED"
    DEGRADED = "DEGRADED"
    IN_FLIGHT = "IN_FLIGHT"
    ACKNOWLEDGED_ELSEWHERE = "ACKNOWLEDGED_ELSEWHERE"
    NOT_IN_SKRIBBLE_LOG = "NOT_IN_SKRIBBLE_LOG"
    UNPUBLISHED = "UNPUBLISHED"
    TYPE_UNCONFIRMED = "TYPE_UNCONFIRMED"
    AMBIGUOUS_TYPE = "AMBIGUOUS_TYPE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    SHARED_RECORD = "SHARED_RECORD"


ANOMALIES = frozenset(
    {
        Verdict.ACKNOWLEDGED_ELSEWHERE,
        Verdict.SHARED_RECORD,
        Verdict.NOT_IN_SKRIBBLE_LOG,
        Verdict.AMBIGUOUS_TYPE,
        Verdict.UNKNOWN_TYPE,
    }
)


class Action(StrEnum):
    """Action the audit took on a finding."""

    NONE = "NONE"
    RECOVERED = "RECOVERED"
    RECORDED_MEANWHILE = "RECORDED_MEANWHILE"
    PUBLISHED = "PUBLISHED"
    LEASE_HELD = "LEASE_HELD"
    TYPE_SETTLED = "TYPE_SETTLED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Finding:
    """One callback's result. No URL is kept: it may carry the URL token."""

    signature_request_id: str
    verdict: Verdict
    action: Action
    callback_type: str
    callback_id: str | None = None
    skribble_state: str | None = None
    attempts: int | None = None
    detail: str = ""

    @property
    def is_anomaly(self) -> bool:
        return self.verdict in ANOMALIES

    def as_dict(self) -> dict[str, Any]:
        return {
            "signature_request_id": self.signature_request_id,
            "verdict": self.verdict.value,
            "action": self.action.value,
            "callback_type": self.callback_type,
            "callback_id": self.callback_id,
            "skribble_state": self.skribble_state,
            "attempts": self.attempts,
            "detail": self.detail,
        }


@dataclass
class RequestAudit:
    """The audit of one signature request."""

    signature_request_id: str
    findings: list[Finding] = field(default_factory=list)
    log_entries: int = 0
    records: int = 0
    signature_request_status: str | None = None

    def count(self, verdict: Verdict, action: Action | None = None) -> int:
        return sum(
            1
            for finding in self.findings
            if finding.verdict is verdict
            and (action is None or finding.action is action)
        )

    @property
    def anomalies(self) -> int:
        return sum(1 for finding in self.findings if finding.is_anomaly)

    @property
    def failures(self) -> int:
        return sum(1 for finding in self.findings if finding.action is Action.FAILED)

    def state(self) -> dict[str, Any]:
        """Return the audit state item's attributes."""
        verdicts: dict[str, int] = defaultdict(int)
        for finding in self.findings:
            verdicts[finding.verdict.value] += 1
        if self.failures:
            outcome = "FAILED"
        elif self.anomalies:
            outcome = "ANOMALY"
        elif self.count(Verdict.MISSED):
            outcome = "RECOVERED"
        elif self.count(Verdict.DEGRADED):
            outcome = "DEGRADED"
        else:
            outcome = "OK"
        return {
            "signature_request_id": self.signature_request_id,
            "outcome": outcome,
            "log_entries": self.log_entries,
            "records": self.records,
            "signature_request_status": self.signature_request_status,
            "verdicts": dict(verdicts),
        }


def key_from_url(url: str) -> CallbackKey | None:
    """Return the record key the receiver used for a callback URL.

    Skribble HTML-encodes callback URLs, sometimes twice, so the URL is
    unescaped until it stops changing. Returns None for a URL that is not
    in the receiver's form `/callbacks/<type>[/<ids>][?<ids>]`.
    """
    text = url
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    parts = urlsplit(text)
    segments = [unquote(segment) for segment in parts.path.split("/")]
    for index in range(len(segments) - 2, -1, -1):
        route = ROUTE_BY_SEGMENT.get(segments[index + 1])
        if segments[index] == "callbacks" and route is not None:
            break
    else:
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        ids = parse_callback_ids(segments[index + 2 :], query)
    except MalformedCallback:
        return None
    return CallbackKey(
        route_type=route,
        signature_request_id=ids.signature_request_id,
        document_id=ids.document_id,
        signature_id=ids.signature_id,
    )


def typed_key(
    key: CallbackKey, entry: CallbackLogEntry, stored: dict[str, StoredCallback]
) -> CallbackKey:
    """Return the key of an entry on a URL that several callback types share.

    The receiver keeps the type in the key when the body named it. So the
    typed key is used when such a record exists, or when no record exists at
    all, so that each missed callback is recovered into a record of its own.
    A record without the type (the body named none) takes every entry of its
    URL, as the receiver did.
    """
    if not key.route_is_ambiguous or entry.type not in CallbackType.__members__:
        return key
    typed = key.model_copy(update={"type_in_key": CallbackType(entry.type)})
    if typed.sk in stored or key.sk not in stored:
        return typed
    return key


class RequestAuditor:
    """Audits one signature request and repairs what it can."""

    def __init__(
        self,
        client: SkribbleClient,
        records: AuditRecords,
        publisher: EventPublisher,
        *,
        degraded_attempts: int,
        unpublished_grace: timedelta,
        retention_days: int,
        deadline: Deadline,
    ) -> None:
        self._client = client
        self._records = records
        self._publisher = publisher
        self._degraded_attempts = degraded_attempts
        self._grace = unpublished_grace
        self._retention_days = retention_days
        self._deadline = deadline

    def audit(self, signature_request_id: str) -> RequestAudit:
        """Compare, recover and report; raises on Skribble or AWS failures.

        The log is read before the records, so that a record written by a
        delivery during the audit is seen, not reported as acknowledged
        elsewhere.
        """
        result = RequestAudit(signature_request_id)
        entries = self._client.callbacks(signature_request_id)
        log_read_at = datetime.now(UTC)
        stored = {
            record.key.sk: record
            for record in self._records.callbacks_of(signature_request_id)
        }
        result.log_entries = len(entries)
        result.records = len(stored)
        summary: list[SignatureRequestSummary] = []

        def current_status() -> str | None:
            if not summary:
                summary.append(self._client.signature_request(signature_request_id))
            return summary[0].status_overall

        groups = self._group(signature_request_id, entries, stored)
        for key, group in groups.items():
            for entry in group:
                result.findings.append(
                    self._classify(key, entry, stored, current_status)
                )
            record = stored.get(key.sk)
            if record is not None and len(group) > 1:
                # Several of Skribble's callbacks went to one URL and so to
                # one record: only the first was published.
                result.findings.append(
                    Finding(
                        signature_request_id,
                        Verdict.SHARED_RECORD,
                        Action.NONE,
                        record.callback_type.value,
                        record.key.callback_id,
                        detail=f"{len(group)} callbacks",
                    )
                )
            if record is not None and not record.type_confirmed:
                result.findings.append(self._settle_type(record, group))

        matched = set(groups)
        for record in stored.values():
            if record.key not in matched and record.first_received_at < (
                log_read_at - LOG_RACE_MARGIN
            ):
                result.findings.append(
                    Finding(
                        signature_request_id,
                        Verdict.NOT_IN_SKRIBBLE_LOG,
                        Action.NONE,
                        record.callback_type.value,
                        record.key.callback_id,
                    )
                )
            if record.event_status is EventStatus.PENDING:
                finding = self._publish_pending(record)
                if finding is not None:
                    result.findings.append(finding)
        if summary:
            result.signature_request_status = summary[0].status_overall
        return result

    def _group(
        self,
        signature_request_id: str,
        entries: list[CallbackLogEntry],
        stored: dict[str, StoredCallback],
    ) -> dict[CallbackKey, list[CallbackLogEntry]]:
        """Map each log entry to a record key; several entries may share one.

        For a URL not in the receiver's form (an integrator's own endpoint),
        an unmatched record of the same type is used, else a key of the
        entry's type without document or signature id.
        """
        groups: dict[CallbackKey, list[CallbackLogEntry]] = defaultdict(list)
        unmatched: list[CallbackLogEntry] = []
        for entry in sorted(entries, key=_created):
            key = key_from_url(entry.url)
            if key is None or key.signature_request_id != signature_request_id:
                unmatched.append(entry)
            else:
                groups[typed_key(key, entry, stored)].append(entry)
        claimed = set(groups)
        for entry in unmatched:
            fallback = next(
                (
                    record.key
                    for record in stored.values()
                    if record.key not in claimed
                    and record.callback_type.value == entry.type
                ),
                None,
            )
            if fallback is None and entry.type in CallbackType.__members__:
                fallback = CallbackKey(
                    route_type=CallbackType(entry.type),
                    signature_request_id=signature_request_id,
                )
            if fallback is None:
                continue
            claimed.add(fallback)
            groups[fallback].append(entry)
        return groups

    def _classify(
        self,
        key: CallbackKey,
        entry: CallbackLogEntry,
        stored: dict[str, StoredCallback],
        current_status: Callable[[], str | None],
    ) -> Finding:
        record = stored.get(key.sk)

        def finding(verdict: Verdict, action: Action, detail: str = "") -> Finding:
            return Finding(
                key.signature_request_id,
                verdict,
                action,
                entry.type,
                key.callback_id,
                entry.state,
                entry.attempts,
                detail,
            )

        if entry.type not in CallbackType.__members__:
            return finding(Verdict.UNKNOWN_TYPE, Action.NONE)
        if entry.state == "OPEN" and entry.attempts >= self._degraded_attempts:
            return finding(Verdict.DEGRADED, Action.NONE)
        if record is not None:
            return finding(Verdict.DELIVERED, Action.NONE)
        if entry.state == "COMPLETED":
            return finding(Verdict.ACKNOWLEDGED_ELSEWHERE, Action.NONE)
        if entry.state != "RESIGNATED":
            return finding(Verdict.IN_FLIGHT, Action.NONE)

        status = current_status()
        action = self._recover(key, entry, status)
        if action is not Action.RECORDED_MEANWHILE:
            # Later entries that share this key find the record, as a late
            # delivery of them would.
            stored[key.sk] = StoredCallback(
                key=key,
                callback_type=CallbackType(entry.type),
                type_confirmed=True,
                record_source=RecordSource.AUDIT,
                event_status=EventStatus.PUBLISHED,
                first_received_at=datetime.now(UTC),
                publish_lease_until=None,
                delivery_count=0,
                body=None,
                signature_request_status=status,
            )
        return finding(Verdict.MISSED, action)

    def _recover(
        self, key: CallbackKey, entry: CallbackLogEntry, status: str | None
    ) -> Action:
        now = datetime.now(UTC)
        recovered = RecoveredCallback(
            callback_type=CallbackType(entry.type),
            type_confirmed=True,
            skribble_state=entry.state,
            attempts=entry.attempts,
            created_at=entry.created_at,
            last_message=entry.messages[-1][:200] if entry.messages else None,
            signature_request_status=status,
        )
        created = self._records.recover(
            key,
            recovered,
            now=now,
            retention_days=self._retention_days,
            publish_lease=RECOVERY_PUBLISH_LEASE,
        )
        if not created:
            return Action.RECORDED_MEANWHILE
        detail = CallbackEventDetail(
            callback_id=key.callback_id,
            callback_type=recovered.callback_type,
            type_confirmed=True,
            route_type=key.route_type,
            signature_request_id=key.signature_request_id,
            document_id=key.document_id,
            signature_id=key.signature_id,
            first_received_at=now,
            recovered=True,
            record_source=RecordSource.AUDIT,
            body=None,
            signature_request_status=status,
        )
        return self._publish(key, detail, now, success=Action.RECOVERED)

    def _publish(
        self,
        key: CallbackKey,
        detail: CallbackEventDetail,
        time: datetime,
        *,
        success: Action,
    ) -> Action:
        """Publish and mark the record, as the receiver does after recording.

        A failure leaves the record PENDING with its lease, so a later
        delivery or the next run publishes it once the lease has run out.
        """
        try:
            event_id = self._publisher.publish(
                detail, time=time, deadline=self._deadline
            )
            self._deadline.require("mark event published")
            self._records.mark_published(key, event_id=event_id, at=datetime.now(UTC))
        except CallbackError as error:
            logger.warning(
                "Publishing an audited callback failed",
                extra={"callback_id": key.callback_id, "reason": error.code},
            )
            return Action.FAILED
        return success

    def _publish_pending(self, record: StoredCallback) -> Finding | None:
        now = datetime.now(UTC)
        if record.first_received_at > now - self._grace:
            return None

        def finding(action: Action) -> Finding:
            return Finding(
                record.key.signature_request_id,
                Verdict.UNPUBLISHED,
                action,
                record.callback_type.value,
                record.key.callback_id,
            )

        if not self._records.try_take_publish_lease(
            record, now=now, lease=RECOVERY_PUBLISH_LEASE
        ):
            return finding(Action.LEASE_HELD)
        recovered = record.record_source is RecordSource.AUDIT
        detail = CallbackEventDetail(
            callback_id=record.key.callback_id,
            callback_type=record.callback_type,
            type_confirmed=record.type_confirmed,
            route_type=record.key.route_type,
            signature_request_id=record.key.signature_request_id,
            document_id=record.key.document_id,
            signature_id=record.key.signature_id,
            first_received_at=record.first_received_at,
            recovered=recovered,
            record_source=record.record_source,
            body=record.body,
            signature_request_status=record.signature_request_status,
        )
        return finding(
            self._publish(
                record.key, detail, record.first_received_at, success=Action.PUBLISHED
            )
        )

    def _settle_type(
        self, record: StoredCallback, group: list[CallbackLogEntry]
    ) -> Finding:
        types = {entry.type for entry in group}

        def finding(verdict: Verdict, action: Action, callback_type: str) -> Finding:
            return Finding(
                record.key.signature_request_id,
                verdict,
                action,
                callback_type,
                record.key.callback_id,
                detail=f"receiver recorded {record.callback_type.value}",
            )

        if len(types) != 1 or not types <= set(CallbackType.__members__):
            # NOTE: when the body named no type, START_SIGN and INITIATE on
            # the update route share a key until a signature changes the
            # document. Their entries then land on one record, whose type
            # stays unconfirmed.
            return finding(Verdict.AMBIGUOUS_TYPE, Action.NONE, ",".join(sorted(types)))
        (settled,) = types
        self._records.settle_callback_type(
            record.key, CallbackType(settled), now=datetime.now(UTC)
        )
        return finding(Verdict.TYPE_UNCONFIRMED, Action.TYPE_SETTLED, settled)


def _created(entry: CallbackLogEntry) -> datetime:
    return entry.created_at or datetime.min.replace(tzinfo=UTC)
