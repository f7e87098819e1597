"""Anomalies, degraded delivery, unpublished records and unconfirmed types."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from skribble_receiver.audit import Action, Verdict
from tests.support.audit import AuditBench, callback_events, put_callback_record
from tests.support.gateway import AcknowledgingServer
from tests.support.sim_client import wait_for


@pytest.fixture
def acknowledger() -> Iterator[AcknowledgingServer]:
    server = AcknowledgingServer().start()
    yield server
    server.stop()


def _completed(bench: AuditBench, request_id: str) -> None:
    wait_for(
        lambda: all(
            callback["state"] == "COMPLETED"
            for callback in bench.sim.callbacks(request_id)
        )
    )


def test_callback_acknowledged_elsewhere_reported(
    audit_bench: AuditBench, acknowledger: AcknowledgingServer
) -> None:
    request_id = audit_bench.create_request(base_url=acknowledger.base_url)
    audit_bench.sim.step(request_id, "sign")
    _completed(audit_bench, request_id)

    report = audit_bench.run_audit()

    assert acknowledger.calls == 2
    assert report.total(Verdict.ACKNOWLEDGED_ELSEWHERE) == 2
    assert report.anomalies == 2
    assert audit_bench.callback_records(request_id) == []
    state = audit_bench.audit_state(request_id)
    assert state is not None
    assert state["outcome"] == "ANOMALY"


def test_record_absent_from_log_reported(audit_bench: AuditBench) -> None:
    request_id = audit_bench.create_request()
    audit_bench.sim.step(request_id, "sign")
    _completed(audit_bench, request_id)
    put_callback_record(
        audit_bench,
        signature_request_id=request_id,
        route_type="ERROR",
        document_id=str(uuid.uuid4()),
        received_at=datetime.now(UTC) - timedelta(hours=1),
    )

    report = audit_bench.run_audit()

    assert report.total(Verdict.NOT_IN_SKRIBBLE_LOG) == 1
    assert report.total(Verdict.DELIVERED) == 2
    assert report.anomalies == 1


def test_failing_delivery_reported_degraded(audit_bench: AuditBench) -> None:
    audit_bench.gateway.down = True
    request_id = audit_bench.create_request()
    audit_bench.sim.step(request_id, "sign")
    wait_for(
        lambda: all(
            callback["attempts"] >= 3
            for callback in audit_bench.sim.callbacks(request_id)
        )
    )
    # Slow simulated time to real time so the callbacks stay OPEN.
    audit_bench.sim.admin("/_sim/clock", {"time_scale": 1})

    report = audit_bench.run_audit(degraded_attempts=3)

    states = {callback["state"] for callback in audit_bench.sim.callbacks(request_id)}
    assert states == {"OPEN"}
    assert report.total(Verdict.DEGRADED) == 2
    assert report.counts()["missed"] == 0
    assert audit_bench.callback_records(request_id) == []


def test_unpublished_record_published_after_grace(
    audit_bench: AuditBench, acknowledger: AcknowledgingServer
) -> None:
    request_id = audit_bench.create_request(base_url=acknowledger.base_url)
    audit_bench.sim.step(request_id, "sign")
    _completed(audit_bench, request_id)
    success = next(
        callback
        for callback in audit_bench.sim.callbacks(request_id)
        if callback["type"] == "SUCCESS"
    )
    document_id = success["url"].rstrip("/").split("/")[-1]
    callback_id = put_callback_record(
        audit_bench,
        signature_request_id=request_id,
        route_type="SUCCESS",
        document_id=document_id,
        received_at=datetime.now(UTC) - timedelta(hours=1),
        event_status="PENDING",
    )

    report = audit_bench.run_audit()

    events = callback_events(audit_bench.new_events())
    assert report.total(Verdict.UNPUBLISHED, Action.PUBLISHED) == 1
    assert [event["detail"]["callback_id"] for event in events] == [callback_id]
    assert events[0]["detail"]["recovered"] is False
    (record,) = [
        record
        for record in audit_bench.callback_records(request_id)
        if record["callback_id"] == callback_id
    ]
    assert record["event_status"] == "PUBLISHED"


def test_unconfirmed_type_settled_from_log(audit_bench: AuditBench) -> None:
    request_id = audit_bench.create_request()
    audit_bench.sim.step(request_id, "start-sign")
    _completed(audit_bench, request_id)
    wait_for(lambda: audit_bench.callback_records(request_id))
    (before,) = audit_bench.callback_records(request_id)

    report = audit_bench.run_audit()

    (after,) = audit_bench.callback_records(request_id)
    # The simulator's body names the type, so the receiver records it, but
    # only Skribble's log confirms it.
    assert before["callback_type"] == "START_SIGN"
    assert before["type_confirmed"] is False
    assert after["callback_type"] == "START_SIGN"
    assert after["type_confirmed"] is True
    assert after["type_settled_by"] == "AUDIT"
    assert report.total(Verdict.TYPE_UNCONFIRMED, Action.TYPE_SETTLED) == 1


def test_failing_request_does_not_stop_others(audit_bench: AuditBench) -> None:
    unknown = str(uuid.uuid4())
    put_callback_record(
        audit_bench,
        signature_request_id=unknown,
        route_type="SUCCESS",
        document_id=str(uuid.uuid4()),
        received_at=datetime.now(UTC),
    )
    audit_bench.gateway.down = True
    request_id = audit_bench.create_request()
    audit_bench.sim.step(request_id, "sign")
    wait_for(
        lambda: all(
            callback["state"] == "RESIGNATED"
            for callback in audit_bench.sim.callbacks(request_id)
        ),
        timeout=20,
    )

    report = audit_bench.run_audit()

    assert report.errors == {unknown: "not_found"}
    assert len(audit_bench.callback_records(request_id)) == 2
    state = audit_bench.audit_state(unknown)
    assert state is not None
    assert state["outcome"] == "ERROR"


def test_callbacks_sharing_a_record_are_reported(audit_bench: AuditBench) -> None:
    # Two signers start signing one document: both START_SIGN callbacks go to
    # the same update URL, so the receiver keeps one record for both.
    request_id = audit_bench.create_request(
        signatures=["anna@example.com", "ben@example.com"]
    )
    audit_bench.sim.step(request_id, "start-sign", signer="anna@example.com")
    audit_bench.sim.step(request_id, "start-sign", signer="ben@example.com")
    _completed(audit_bench, request_id)
    wait_for(lambda: audit_bench.callback_records(request_id))

    report = audit_bench.run_audit()

    (record,) = audit_bench.callback_records(request_id)
    assert record["callback_type"] == "START_SIGN"
    assert report.total(Verdict.SHARED_RECORD, Action.NONE) == 1
