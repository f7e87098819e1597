"""The audit recovers callbacks Skribble gave up on, exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]

from tests.support.audit import AuditBench, callback_events, summary_events
from tests.support.sim_client import wait_for

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "events"


def _outage(bench: AuditBench) -> str:
    """Sign a request while the receiver returns 503 until Skribble gives up."""
    bench.gateway.down = True
    request_id = bench.create_request()
    bench.sim.step(request_id, "start-sign")
    bench.sim.step(request_id, "sign")
    wait_for(
        lambda: all(
            callback["state"] == "RESIGNATED"
            for callback in bench.sim.callbacks(request_id)
        ),
        timeout=20,
    )
    bench.gateway.down = False
    return request_id


def test_outage_callbacks_recovered(audit_bench: AuditBench) -> None:
    request_id = _outage(audit_bench)

    report = audit_bench.run_audit()

    records = audit_bench.callback_records(request_id)
    events = callback_events(audit_bench.new_events())
    assert sorted(record["callback_type"] for record in records) == [
        "START_SIGN",
        "SUCCESS",
        "UPDATE",
    ]
    assert {record["record_source"] for record in records} == {"AUDIT"}
    assert {record["event_status"] for record in records} == {"PUBLISHED"}
    assert {record["signature_request_status"] for record in records} == {"SIGNED"}
    assert len(events) == 3
    assert {event["detail"]["recovered"] for event in events} == {True}
    assert {event["detail"]["callback_id"] for event in events} == {
        record["callback_id"] for record in records
    }
    assert report.counts()["missed"] == 3
    assert report.counts()["recovered"] == 3


def test_second_run_changes_nothing(audit_bench: AuditBench) -> None:
    request_id = _outage(audit_bench)
    audit_bench.run_audit()
    before = audit_bench.callback_records(request_id)
    audit_bench.new_events()

    report = audit_bench.run_audit()

    after = audit_bench.callback_records(request_id)
    events = audit_bench.new_events()
    assert after == before
    assert callback_events(events) == []
    assert len(summary_events(events)) == 1
    assert report.counts()["missed"] == 0
    assert report.counts()["recovered"] == 0
    assert report.counts()["delivered"] == 3


def test_delivered_callbacks_left_alone(audit_bench: AuditBench) -> None:
    request_id = audit_bench.create_request()
    audit_bench.sim.step(request_id, "sign")
    wait_for(
        lambda: (
            len(audit_bench.callback_records(request_id)) == 2
            and all(
                callback["state"] == "COMPLETED"
                for callback in audit_bench.sim.callbacks(request_id)
            )
        )
    )
    audit_bench.new_events()

    report = audit_bench.run_audit()

    events = audit_bench.new_events()
    records = audit_bench.callback_records(request_id)
    assert callback_events(events) == []
    assert {record["record_source"] for record in records} == {"RECEIVER"}
    assert report.counts()["delivered"] == 2
    assert report.anomalies == 0
    state = audit_bench.audit_state(request_id)
    assert state is not None
    assert state["outcome"] == "OK"


def test_summary_event_matches_schema(audit_bench: AuditBench) -> None:
    _outage(audit_bench)

    audit_bench.run_audit()

    (summary,) = summary_events(audit_bench.new_events())
    schema = json.loads((SCHEMA / "skribble-audit-completed.json").read_text())
    jsonschema.validate(summary["detail"], schema)
    assert summary["source"] == "skribble.callbacks"
    assert summary["detail"]["callbacks"]["recovered"] == 3
