"""The demo scenario over real sockets: simulator, gateway, functions, moto."""

from __future__ import annotations

from typing import Any

import pytest

from local.demo import Summary, format_summary, run_scenario, summarize

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def summary(local_stack: dict[str, Any]) -> Summary:
    scenario = run_scenario(local_stack, say=lambda _line: None)
    return summarize(local_stack, scenario)


def test_demo_finds_no_mismatch(summary):
    assert summary.problems == [], format_summary(summary)


def test_demo_records_each_callback_once(summary):
    total = summary.total

    assert total.callbacks == 15
    assert total.records == total.callbacks
    assert len(summary.records) == total.callbacks


def test_demo_publishes_each_callback_once(summary):
    callback_ids = [event["detail"]["callback_id"] for event in summary.events]

    assert len(callback_ids) == summary.total.callbacks
    assert len(set(callback_ids)) == len(callback_ids)


def test_demo_counts_duplicates_in_delivery_count(summary):
    counts = sorted(int(record["delivery_count"]["N"]) for record in summary.records)

    assert counts.count(2) == 7
    assert summary.total.record_deliveries == summary.total.answered_2xx


def test_demo_outage_is_retried_until_recorded(summary):
    retried = [
        callback
        for callback in summary.callbacks
        if any(item["status"] == 503 for item in callback["deliveries"])
    ]

    assert len(retried) == 3
    assert all(callback["state"] == "COMPLETED" for callback in retried)
    assert all(callback["attempts"] >= 2 for callback in retried)


def test_demo_covers_every_callback_type(summary):
    sent = {name: row.callbacks for name, row in summary.rows.items()}

    assert sent == {
        "INITIATE": 1,
        "START_SIGN": 2,
        "UPDATE": 6,
        "SUCCESS": 3,
        "ERROR": 2,
        "IDENT_ERROR": 1,
    }


def test_demo_events_carry_source_and_detail_type(summary):
    for event in summary.events:
        assert event["source"] == "skribble.callbacks"
        assert event["detail-type"] == (
            "Skribble Callback " + event["detail"]["callback_type"]
        )
