"""The demo's outage scenario: Skribble gives up, one audit run recovers.

The stack's AuditFunction runs in its worker with the environment of
template.yaml, invoked through the gateway's control port.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from local.demo_client import BusEvents
from local.demo_outage import AUDIT_SUMMARY_DETAIL_TYPE, OutageResult, run_outage
from local.demo_summary import expected_record_key, format_summary

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def outage(local_stack: dict[str, Any]) -> OutageResult:
    return run_outage(local_stack, BusEvents(local_stack), say=lambda _line: None)


def _request_ids(outage: OutageResult) -> set[str]:
    return set(outage.scenario.request_ids.values())


def _resignated(outage: OutageResult) -> list[dict[str, Any]]:
    return [
        callback
        for callback in outage.after.callbacks
        if callback["state"] == "RESIGNATED"
    ]


def _callback_events(
    events: list[dict[str, Any]], request_ids: set[str]
) -> list[dict[str, Any]]:
    return [
        event
        for event in events
        if event["detail"].get("signature_request_id") in request_ids
    ]


def test_outage_makes_skribble_give_up(outage):
    assert len(_resignated(outage)) == 6
    assert outage.before.total.resignated == 6
    assert outage.before.total.records == 0
    assert outage.before.total.events == 0


def test_outage_scenario_finds_no_problem(outage):
    assert outage.problems == []


def test_summary_agrees_after_first_audit(outage):
    assert outage.after.problems == [], format_summary(outage.after)


def test_each_missed_callback_has_one_audit_record(outage):
    records = {
        (record["pk"]["S"], record["sk"]["S"]): record
        for record in outage.records_after_first
    }

    for callback in _resignated(outage):
        record = records[expected_record_key(callback["url"], callback["type"])]
        assert record["record_source"]["S"] == "AUDIT"
        assert "recovered_at" in record
        assert record["event_status"]["S"] == "PUBLISHED"
    assert len(records) == len(_resignated(outage))
    assert len(outage.records_after_first) == len(records)


def test_each_missed_callback_has_one_recovered_event(outage):
    events = _callback_events(outage.first_run_events, _request_ids(outage))
    callback_ids = [event["detail"]["callback_id"] for event in events]
    record_ids = {record["callback_id"]["S"] for record in outage.records_after_first}

    assert len(events) == len(_resignated(outage))
    assert sorted(set(callback_ids)) == sorted(callback_ids)
    assert set(callback_ids) == record_ids
    assert {event["detail"]["recovered"] for event in events} == {True}
    assert {event["detail"]["record_source"] for event in events} == {"AUDIT"}


def test_first_audit_reports_missed_and_recovered(outage):
    findings = [
        finding
        for finding in outage.first_audit["findings"]
        if finding["signature_request_id"] in _request_ids(outage)
    ]

    assert len(findings) == 6
    assert {(item["verdict"], item["action"]) for item in findings} == {
        ("MISSED", "RECOVERED")
    }
    assert outage.first_audit["callbacks"]["recovered"] >= 6


def test_second_audit_recovers_nothing(outage):
    counts = outage.second_audit["callbacks"]

    assert counts["missed"] == 0
    assert counts["recovered"] == 0
    assert counts["published"] == 0


def test_second_audit_publishes_no_callback_event(outage):
    events = [
        event
        for event in outage.second_run_events
        if event["detail-type"] != AUDIT_SUMMARY_DETAIL_TYPE
    ]

    assert events == []


def test_second_audit_changes_no_record(outage):
    assert outage.records_after_second == outage.records_after_first


def test_each_audit_run_publishes_its_summary(outage):
    for audit, events in (
        (outage.first_audit, outage.first_run_events),
        (outage.second_audit, outage.second_run_events),
    ):
        summaries = [
            event
            for event in events
            if event["detail-type"] == AUDIT_SUMMARY_DETAIL_TYPE
        ]
        assert len(summaries) == 1
        assert summaries[0]["detail"]["run_id"] == audit["run_id"]
        assert summaries[0]["detail"]["mode"] == "scheduled"


def test_control_port_rejects_unknown_function(local_stack):
    request = urllib.request.Request(
        local_stack["admin_url"] + "/2015-03-31/functions/NoSuchFunction/invocations",
        data=b"{}",
        method="POST",
    )

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)

    assert raised.value.code == 404
    assert raised.value.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert "NoSuchFunction" in json.loads(raised.value.read())["message"]
