"""Outage scenario of the demo: Skribble gives up, and the audit recovers.

The gateway returns 503 for longer than Skribble retries, so Skribble marks
the callbacks RESIGNATED and the table and the bus never see them. The
summary then shows the gap. The stack's AuditFunction, invoked through the
gateway's control port with the environment template.yaml gives it, reads
Skribble's callbacks log and writes and publishes each missed callback once,
flagged as recovered. A second audit run must find nothing left to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.demo_client import (
    DEMO_TIME_SCALE,
    BusEvents,
    DemoError,
    JsonClient,
    Scenario,
    callback_records,
    simulator_callbacks,
    wait_for,
)
from local.demo_summary import Summary, format_summary, summarize

AUDIT_FUNCTION = "AuditFunction"
AUDIT_SUMMARY_DETAIL_TYPE = "Skribble Audit Completed"
# Skribble stops retrying a callback two hours after it fired; the simulator
# uses the same window by default.
SKRIBBLE_RETRY_WINDOW_SECONDS = 7200
# Real seconds to wait for one audit run; the function's own timeout is 300 s.
AUDIT_INVOKE_TIMEOUT_SECONDS = 330.0
FINDING_COLUMNS = (
    "signature request",
    "type",
    "skribble",
    "attempts",
    "verdict",
    "action",
)


@dataclass
class OutageResult:
    """Observations of the outage scenario before, between and after its audit runs."""

    scenario: Scenario
    before: Summary
    first_audit: dict[str, Any]
    after: Summary
    second_audit: dict[str, Any]
    # Callback records of the scenario after the first and the second run.
    records_after_first: list[dict[str, Any]]
    records_after_second: list[dict[str, Any]]
    # Events the bus received during each audit run.
    first_run_events: list[dict[str, Any]]
    second_run_events: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)


def scheduled_event(region: str) -> dict[str, Any]:
    """Return the event EventBridge Scheduler sends to a scheduled function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [
            f"arn:aws:events:{region}:123456789012:rule/local-AuditFunctionSchedule"
        ],
        "detail": {},
    }


def invoke_audit(stack: dict[str, Any]) -> dict[str, Any]:
    """Run the stack's AuditFunction once, as its schedule does; return its result.

    Raises DemoError when the function fails: its log in the `make dev`
    terminal has the traceback.
    """
    control = JsonClient(stack["admin_url"], timeout=AUDIT_INVOKE_TIMEOUT_SECONDS)
    result: dict[str, Any] = control.call(
        f"/2015-03-31/functions/{AUDIT_FUNCTION}/invocations",
        scheduled_event(stack["region"]),
    )
    if "errorType" in result:
        raise DemoError(
            f"{AUDIT_FUNCTION} failed: {result.get('errorMessage')}. See its log "
            "in the terminal that runs `make dev`."
        )
    return result


def run_outage(
    stack: dict[str, Any], bus: BusEvents, say: Callable[[str], None] = print
) -> OutageResult:
    """Run the outage, both audit runs and the checks; return what they saw."""
    scenario = _cause_missed_callbacks(stack, say)
    request_ids = list(scenario.request_ids.values())
    before = summarize(stack, scenario, bus)
    say("")
    say("Before the audit, the table and the bus lack what Skribble gave up on:")
    say("")
    say(format_summary(before))

    say("")
    say("The scheduled AuditFunction runs once.")
    first_audit = invoke_audit(stack)
    first_run_events = bus.drain()
    say("")
    say(format_audit(first_audit, request_ids))
    after = summarize(stack, scenario, bus)
    records_after_first = callback_records(stack, request_ids)
    say("")
    say("After the audit:")
    say("")
    say(format_summary(after))

    say("")
    say("The AuditFunction runs a second time.")
    second_audit = invoke_audit(stack)
    second_run_events = bus.drain()
    records_after_second = callback_records(stack, request_ids)
    say("")
    say(format_audit(second_audit, request_ids))

    result = OutageResult(
        scenario=scenario,
        before=before,
        first_audit=first_audit,
        after=after,
        second_audit=second_audit,
        records_after_first=records_after_first,
        records_after_second=records_after_second,
        first_run_events=first_run_events,
        second_run_events=second_run_events,
    )
    result.problems = check_outage(result)
    say("")
    say(format_second_run(result))
    return result


def _cause_missed_callbacks(
    stack: dict[str, Any], say: Callable[[str], None]
) -> Scenario:
    """Fire callbacks while the gateway returns 503 until Skribble gives up."""
    simulator = JsonClient(stack["simulator_url"])
    control = JsonClient(stack["admin_url"])
    urls = stack["callback_urls"]
    scenario = Scenario()

    def create(label: str, signers: list[str]) -> str:
        created = simulator.call(
            "/_sim/signature-requests",
            {"title": f"Demo: {label}", "signatures": signers, **urls},
        )
        request_id = str(created["id"])
        scenario.request_ids[label] = request_id
        scenario.duplicates[request_id] = 1
        return request_id

    def step(request_id: str, name: str, signer: str | None = None) -> None:
        payload = {} if signer is None else {"signer": signer}
        simulator.call(f"/_sim/signature-requests/{request_id}/{name}", payload)

    clock = simulator.call("/_sim/clock")
    faults = simulator.call("/_sim/faults")
    simulator.call("/_sim/clock", {"time_scale": DEMO_TIME_SCALE})
    simulator.call("/_sim/faults", {"duplicates": 1})
    say("The receiver is down for longer than Skribble retries a callback.")
    control.call("/_local/outage", {"enabled": True})
    try:
        signed = create("outage-signed", ["judy@example.com", "mallory@example.com"])
        step(signed, "start-sign", "judy@example.com")
        step(signed, "sign", "judy@example.com")
        step(signed, "sign", "mallory@example.com")
        declined = create("outage-declined", ["niaj@example.com", "olivia@example.com"])
        step(declined, "initiate")
        step(declined, "decline", "olivia@example.com")
        wait_for(
            lambda: all(
                callback["attempts"] >= 1
                for callback in simulator_callbacks(
                    simulator, list(scenario.duplicates)
                )
            ),
            "the first deliveries during the outage",
        )
        # Jump past Skribble's retry window: the retries that fall inside it
        # run at once, and then Skribble gives up.
        simulator.call(
            "/_sim/clock", {"advance_seconds": SKRIBBLE_RETRY_WINDOW_SECONDS}
        )
        wait_for(
            lambda: all(
                callback["state"] == "RESIGNATED"
                for callback in simulator_callbacks(
                    simulator, list(scenario.duplicates)
                )
            ),
            "Skribble to give up on every callback of the outage",
        )
    finally:
        control.call("/_local/outage", {"enabled": False})
        simulator.call("/_sim/faults", {"duplicates": faults["duplicates"]})
        simulator.call("/_sim/clock", {"time_scale": clock["time_scale"]})
    callbacks = simulator_callbacks(simulator, list(scenario.duplicates))
    attempts = sorted({callback["attempts"] for callback in callbacks})
    say(
        f"Skribble gave up on {len(callbacks)} callbacks (RESIGNATED after "
        f"{'/'.join(map(str, attempts))} attempts each). The receiver is back."
    )
    return scenario


def _findings_of(audit: dict[str, Any], request_ids: list[str]) -> list[Any]:
    return [
        finding
        for finding in audit["findings"]
        if finding["signature_request_id"] in request_ids
    ]


def _callback_events(
    events: list[dict[str, Any]], request_ids: list[str]
) -> list[dict[str, Any]]:
    return [
        event
        for event in events
        if event.get("detail", {}).get("signature_request_id") in request_ids
    ]


def _summary_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        event
        for event in events
        if event.get("detail-type") == AUDIT_SUMMARY_DETAIL_TYPE
    ]


def check_outage(result: OutageResult) -> list[str]:
    """List every way the outage scenario differs from one exact recovery."""
    problems = [
        f"after the first audit: {problem}" for problem in result.after.problems
    ]
    request_ids = list(result.scenario.request_ids.values())
    resignated = [
        callback
        for callback in result.after.callbacks
        if callback["state"] == "RESIGNATED"
    ]
    if not resignated:
        problems.append("Skribble gave up on no callback: the outage had no effect")
    if result.before.total.records or result.before.total.events:
        problems.append(
            "before the audit the table or the bus already had callbacks of the outage"
        )

    recovered = [
        finding
        for finding in _findings_of(result.first_audit, request_ids)
        if finding["verdict"] == "MISSED" and finding["action"] == "RECOVERED"
    ]
    if len(recovered) != len(resignated):
        problems.append(
            f"the first audit recovered {len(recovered)} callbacks of the outage, "
            f"expected {len(resignated)}"
        )
    first_events = _callback_events(result.first_run_events, request_ids)
    if len(first_events) != len(resignated):
        problems.append(
            f"the first audit published {len(first_events)} callback events, "
            f"expected {len(resignated)}"
        )

    second = _findings_of(result.second_audit, request_ids)
    if any(finding["verdict"] == "MISSED" for finding in second):
        problems.append("the second audit found missed callbacks again")
    if result.second_audit["callbacks"]["recovered"]:
        problems.append(
            f"the second audit recovered "
            f"{result.second_audit['callbacks']['recovered']} callbacks, expected 0"
        )
    second_events = _callback_events(result.second_run_events, request_ids)
    if second_events:
        problems.append(
            f"the second audit published {len(second_events)} callback events, "
            "expected none"
        )
    if result.records_after_second != result.records_after_first:
        problems.append("the second audit changed callback records")
    for run, events in (
        ("first", result.first_run_events),
        ("second", result.second_run_events),
    ):
        count = len(_summary_events(events))
        if count != 1:
            problems.append(f"the {run} audit published {count} summary events")
    return problems


def format_audit(audit: dict[str, Any], request_ids: list[str]) -> str:
    """Return an audit run's counts and its findings on the outage's requests."""
    counts = audit["callbacks"]
    requests = audit["signature_requests"]
    lines = [
        f"Audit run {audit['run_id'][:8]} ({audit['mode']}, "
        f"{audit['duration_seconds']:.1f} s): audited {requests['audited']} of "
        f"{requests['selected']} signature requests, errors {requests['failed']}.",
        "  " + ", ".join(f"{name} {value}" for name, value in counts.items()),
    ]

    findings = _findings_of(audit, request_ids)
    if not findings:
        lines.append("  No findings on the outage's signature requests.")
        return "\n".join(lines)
    rows = [FINDING_COLUMNS]
    for finding in findings:
        rows.append(
            (
                finding["signature_request_id"][:8],
                finding["callback_type"],
                finding["skribble_state"] or "-",
                "-" if finding["attempts"] is None else str(finding["attempts"]),
                finding["verdict"],
                finding["action"],
            )
        )

    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines.append("")
    for index, row in enumerate(rows):
        lines.append(
            "  "
            + "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
        if index == 0:
            lines.append("  " + "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_second_run(result: OutageResult) -> str:
    """Return the verdict on the second run and the scenario's problems."""
    request_ids = list(result.scenario.request_ids.values())
    changed = result.records_after_second != result.records_after_first
    lines = [
        "The second run published "
        f"{len(_callback_events(result.second_run_events, request_ids))} callback "
        f"events and {len(_summary_events(result.second_run_events))} summary "
        "event, and "
        + ("changed callback records." if changed else "changed no callback record.")
    ]
    if result.problems:
        lines.append(f"MISMATCH ({len(result.problems)}):")
        lines += [f"  - {problem}" for problem in result.problems]
    else:
        lines.append(
            "OK: one audit run recovered every callback Skribble gave up on, "
            "exactly once."
        )
    return "\n".join(lines)
