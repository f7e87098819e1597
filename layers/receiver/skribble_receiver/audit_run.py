"""One audit run: choose signature requests, audit them in parallel, report.

A run audits each signature request once, in this order. First come those an
earlier run left in the cursor, then those with callback records first seen
in the window (ActivityIndex). Last come those Skribble lists as updated in
the window, which finds requests whose callbacks never reached the receiver.
The run stops starting new work when its time budget ends and leaves the rest
in the cursor.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from skribble_receiver import aws
from skribble_receiver.audit import Action, RequestAudit, RequestAuditor, Verdict
from skribble_receiver.audit_config import AuditSettings, load_credentials
from skribble_receiver.audit_records import AuditStore
from skribble_receiver.aws import Deadline
from skribble_receiver.errors import CallbackError
from skribble_receiver.events import EventPublisher
from skribble_receiver.observability import logger, metrics
from skribble_receiver.records import iso
from skribble_receiver.skribble_api import Credentials, SkribbleApiError, SkribbleClient
from skribble_receiver.stored_callbacks import AuditRecords

SUMMARY_DETAIL_TYPE = "Skribble Audit Completed"
LIST_PAGE_SIZE = 50
# The summary event stays far below EventBridge's 256 KB entry limit.
MAX_SUMMARY_FINDINGS = 100
MAX_SUMMARY_ERRORS = 50
# AWS writes that started before the budget ended may use this much longer.
AWS_GRACE_SECONDS = 10.0

METRIC_AUDITED = "AuditedSignatureRequests"
METRIC_MISSED = "CallbacksMissed"
METRIC_RECOVERED = "CallbacksRecovered"
METRIC_DEGRADED = "DeliveryDegraded"
METRIC_ANOMALIES = "CallbackAnomalies"
METRIC_ERRORS = "AuditErrors"
METRIC_DEFERRED = "AuditDeferred"


class AuditRunFailed(Exception):
    """The run could not start, for example because Skribble rejected the login."""


@dataclass(frozen=True)
class AuditScope:
    """Scope of a run: a time window, or named signature requests."""

    window_start: datetime
    window_end: datetime
    signature_request_ids: tuple[str, ...] = ()
    use_cursor: bool = True
    mode: str = "scheduled"


@dataclass
class AuditReport:
    """Everything one run found and did."""

    run_id: str
    scope: AuditScope
    started_at: datetime
    finished_at: datetime | None = None
    selected: int = 0
    audits: list[RequestAudit] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)
    listing_complete: bool = True
    listing_error: str | None = None

    def total(self, verdict: Verdict, action: Action | None = None) -> int:
        return sum(audit.count(verdict, action) for audit in self.audits)

    @property
    def anomalies(self) -> int:
        return sum(audit.anomalies for audit in self.audits)

    @property
    def error_count(self) -> int:
        failed_actions = sum(audit.failures for audit in self.audits)
        return len(self.errors) + failed_actions + (1 if self.listing_error else 0)

    def counts(self) -> dict[str, int]:
        return {
            "log_entries": sum(audit.log_entries for audit in self.audits),
            "delivered": self.total(Verdict.DELIVERED),
            "missed": self.total(Verdict.MISSED),
            "recovered": self.total(Verdict.MISSED, Action.RECOVERED),
            "degraded": self.total(Verdict.DEGRADED),
            "anomalies": self.anomalies,
            "published": self.total(Verdict.UNPUBLISHED, Action.PUBLISHED),
            "types_settled": self.total(Verdict.TYPE_UNCONFIRMED, Action.TYPE_SETTLED),
            "failed_actions": sum(audit.failures for audit in self.audits),
        }

    def summary_detail(self) -> dict[str, Any]:
        """Return the detail of the `Skribble Audit Completed` event."""
        reportable = [
            finding.as_dict()
            for audit in self.audits
            for finding in audit.findings
            if finding.verdict not in (Verdict.DELIVERED, Verdict.IN_FLIGHT)
        ]
        errors = [
            {"signature_request_id": request_id, "code": code}
            for request_id, code in self.errors.items()
        ]
        finished = self.finished_at or datetime.now(UTC)
        return {
            "run_id": self.run_id,
            "mode": self.scope.mode,
            "started_at": iso(self.started_at),
            "finished_at": iso(finished),
            "window_start": iso(self.scope.window_start),
            "window_end": iso(self.scope.window_end),
            "complete": not self.deferred and self.listing_complete,
            "signature_requests": {
                "selected": self.selected,
                "audited": len(self.audits),
                "failed": len(self.errors),
                "deferred": len(self.deferred),
            },
            "callbacks": self.counts(),
            "listing_complete": self.listing_complete,
            "listing_error": self.listing_error,
            "errors": errors[:MAX_SUMMARY_ERRORS],
            "findings": reportable[:MAX_SUMMARY_FINDINGS],
            "findings_truncated": len(reportable) > MAX_SUMMARY_FINDINGS,
        }


class AuditRun:
    """Runs the audit over a scope with bounded concurrency and a time budget."""

    def __init__(
        self,
        client: SkribbleClient,
        records: AuditRecords,
        store: AuditStore,
        publisher: EventPublisher,
        *,
        max_concurrency: int,
        degraded_attempts: int,
        unpublished_grace: timedelta,
        retention_days: int,
        max_list_pages: int,
    ) -> None:
        self._client = client
        self._records = records
        self._store = store
        self._publisher = publisher
        self._max_concurrency = max_concurrency
        self._degraded_attempts = degraded_attempts
        self._grace = unpublished_grace
        self._retention_days = retention_days
        self._max_list_pages = max_list_pages

    def run(self, scope: AuditScope, *, budget_seconds: float) -> AuditReport:
        """Audit the scope and publish the summary; return the report.

        Raises AuditRunFailed when Skribble cannot be logged in to at all,
        so that the invocation fails and its alarm and destination see it.
        """
        stop_at = time.monotonic() + budget_seconds
        self._client.deadline = stop_at
        deadline = Deadline(expires_at=stop_at + AWS_GRACE_SECONDS)
        report = AuditReport(
            run_id=str(uuid.uuid4()), scope=scope, started_at=datetime.now(UTC)
        )
        logger.append_keys(audit_run_id=report.run_id)
        try:
            self._client.token()
        except SkribbleApiError as error:
            raise AuditRunFailed(
                f"Logging in to Skribble failed: {error.message} Check the API "
                "base URL and the credentials secret."
            ) from error

        selected = self._select(scope, report)
        report.selected = len(selected)
        logger.info(
            "Audit run started",
            extra={
                "mode": scope.mode,
                "window_start": iso(scope.window_start),
                "window_end": iso(scope.window_end),
                "selected": len(selected),
            },
        )

        auditor = RequestAuditor(
            self._client,
            self._records,
            self._publisher,
            degraded_attempts=self._degraded_attempts,
            unpublished_grace=self._grace,
            retention_days=self._retention_days,
            deadline=deadline,
        )
        with ThreadPoolExecutor(
            max_workers=self._max_concurrency, thread_name_prefix="audit"
        ) as pool:
            outcomes = list(
                pool.map(
                    lambda request_id: self._audit_one(auditor, request_id, stop_at),
                    selected,
                )
            )
        for request_id, outcome in zip(selected, outcomes, strict=True):
            if isinstance(outcome, RequestAudit):
                report.audits.append(outcome)
            elif outcome is None:
                report.deferred.append(request_id)
            else:
                report.errors[request_id] = outcome

        if scope.use_cursor:
            dropped = self._store.save_cursor(report.deferred, now=datetime.now(UTC))
            if dropped:
                logger.warning("Audit cursor is full", extra={"dropped": dropped})
        report.finished_at = datetime.now(UTC)
        self._publish_summary(report, deadline)
        record_metrics(report)
        logger.info(
            "Audit run finished",
            extra={**report.counts(), "deferred": len(report.deferred)},
        )
        return report

    def _select(self, scope: AuditScope, report: AuditReport) -> list[str]:
        if scope.signature_request_ids:
            return list(dict.fromkeys(scope.signature_request_ids))
        selected: dict[str, None] = {}
        if scope.use_cursor:
            selected.update(dict.fromkeys(self._store.load_cursor()))
        active = self._store.active_signature_requests(
            scope.window_start, scope.window_end
        )
        selected.update(dict.fromkeys(active))
        try:
            changed = self._changed_at_skribble(scope, report)
        except SkribbleApiError as error:
            report.listing_complete = False
            report.listing_error = error.code
            logger.warning(
                "Listing signature requests at Skribble failed",
                extra={"reason": error.code, "status": error.status},
            )
        else:
            selected.update(dict.fromkeys(changed))
        return list(selected)

    def _changed_at_skribble(self, scope: AuditScope, report: AuditReport) -> list[str]:
        """Return the signature requests Skribble shows as updated in the window.

        NOTE: Skribble's list has no filter on update time and its order is
        not documented, so the first `max_list_pages` pages are read whole.
        An account with more signature requests than that relies on the
        ActivityIndex for the rest, and the summary sets `listing_complete: false`.
        """
        changed: list[str] = []
        for page_number in range(1, self._max_list_pages + 1):
            page = self._client.list_signature_requests(page_number, LIST_PAGE_SIZE)
            changed.extend(
                item.id
                for item in page
                # No upper bound: Skribble's clock may run ahead of this one.
                if item.updated_at is None or item.updated_at >= scope.window_start
            )
            if len(page) < LIST_PAGE_SIZE:
                return changed
        report.listing_complete = False
        return changed

    def _audit_one(
        self, auditor: RequestAuditor, request_id: str, stop_at: float
    ) -> RequestAudit | str | None:
        """Audit one request; return its audit, an error code, or None if deferred."""
        if time.monotonic() >= stop_at:
            return None
        try:
            audit = auditor.audit(request_id)
            self._store.save_state(
                request_id,
                audit.state(),
                now=datetime.now(UTC),
                retention_days=self._retention_days,
            )
        except SkribbleApiError as error:
            if error.code == "deadline_exceeded":
                return None
            return self._failed(request_id, error.code, error)
        except CallbackError as error:
            return self._failed(request_id, error.code, error)
        except Exception as error:  # one request must not stop the others
            return self._failed(request_id, "unexpected_error", error)
        for finding in audit.findings:
            if finding.verdict in (Verdict.DELIVERED, Verdict.IN_FLIGHT):
                continue
            logger.warning("Audit finding", extra=finding.as_dict())
        return audit

    def _failed(self, request_id: str, code: str, error: Exception) -> str:
        logger.warning(
            "Auditing a signature request failed",
            extra={"signature_request_id": request_id, "reason": code},
            exc_info=error,
        )
        try:
            self._store.save_state(
                request_id,
                {"signature_request_id": request_id, "outcome": "ERROR", "error": code},
                now=datetime.now(UTC),
                retention_days=self._retention_days,
            )
        except CallbackError as state_error:
            logger.warning(
                "Saving the audit state failed",
                extra={"signature_request_id": request_id, "reason": state_error.code},
            )
        return code

    def _publish_summary(self, report: AuditReport, deadline: Deadline) -> None:
        try:
            self._publisher.publish_summary(
                SUMMARY_DETAIL_TYPE,
                json.dumps(report.summary_detail()),
                time=report.finished_at or datetime.now(UTC),
                deadline=deadline,
            )
        except CallbackError as error:
            # The findings are in the logs, metrics and audit states as well.
            logger.warning(
                "Publishing the audit summary failed", extra={"reason": error.code}
            )
            report.errors["summary_event"] = error.code


def record_metrics(report: AuditReport) -> None:
    """Add the run's EMF metrics; the handler's decorator flushes them."""
    counts = report.counts()
    values = {
        METRIC_AUDITED: len(report.audits),
        METRIC_MISSED: counts["missed"],
        METRIC_RECOVERED: counts["recovered"],
        METRIC_DEGRADED: counts["degraded"],
        METRIC_ANOMALIES: counts["anomalies"],
        METRIC_ERRORS: report.error_count,
        METRIC_DEFERRED: len(report.deferred),
    }
    for name, value in values.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def window_scope(now: datetime, lookback_hours: float, *, mode: str) -> AuditScope:
    """Return the scope of a scheduled or operator run over the last hours."""
    return AuditScope(
        window_start=now - timedelta(hours=lookback_hours),
        window_end=now,
        use_cursor=mode == "scheduled",
        mode=mode,
    )


def create_audit_run(
    settings: AuditSettings,
    credentials: Callable[[], Credentials] | None = None,
) -> AuditRun:
    """Wire an AuditRun to the table, the bus and Skribble from the settings.

    `credentials` defaults to reading the settings' Secrets Manager secret.
    """
    arn = settings.credentials_secret_arn
    client = SkribbleClient(
        settings.skribble_api_base_url,
        credentials or (lambda: load_credentials(arn)),
        timeout=settings.api_timeout_seconds,
    )
    dynamodb = aws.client("dynamodb")
    return AuditRun(
        client,
        AuditRecords(dynamodb, settings.table_name),
        AuditStore(dynamodb, settings.table_name),
        EventPublisher(
            aws.client("events"),
            bus_name=settings.event_bus_name,
            source=settings.event_source,
        ),
        max_concurrency=settings.max_concurrency,
        degraded_attempts=settings.degraded_attempts,
        unpublished_grace=timedelta(seconds=settings.unpublished_grace_seconds),
        retention_days=settings.record_retention_days,
        max_list_pages=settings.max_list_pages,
    )
