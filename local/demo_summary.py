"""The demo's summary: the simulator's callbacks against records and events."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from local.demo_client import (
    BusEvents,
    JsonClient,
    Scenario,
    callback_records,
    simulator_callbacks,
)
from skribble_receiver.audit import key_from_url
from skribble_receiver.models import CallbackType

CALLBACK_TYPES = ("INITIATE", "START_SIGN", "UPDATE", "SUCCESS", "ERROR", "IDENT_ERROR")


@dataclass
class TypeCounts:
    """One row of the summary: what happened to the callbacks of one type."""

    callbacks: int = 0
    http_calls: int = 0
    answered_2xx: int = 0
    answered_503: int = 0
    # Callbacks Skribble gave up on after its retries (state RESIGNATED).
    resignated: int = 0
    records: int = 0
    # Records the audit wrote for callbacks that never reached the receiver.
    recovered: int = 0
    record_deliveries: int = 0
    events: int = 0


@dataclass
class Summary:
    """The comparison of simulator, table and bus for one demo run."""

    rows: dict[str, TypeCounts]
    problems: list[str]
    records: list[dict[str, Any]]
    events: list[dict[str, Any]]
    callbacks: list[dict[str, Any]]

    @property
    def total(self) -> TypeCounts:
        total = TypeCounts()
        for row in self.rows.values():
            for name in total.__dataclass_fields__:
                setattr(total, name, getattr(total, name) + getattr(row, name))
        return total


def expected_record_key(url: str, callback_type: str) -> tuple[str, str]:
    """Return the (pk, sk) the receiver stores a callback under.

    The key comes from the URL as the audit reads it. On a URL that several
    callback types share, the receiver keeps the type in the key, because
    the simulator's body names it.
    """
    key = key_from_url(url)
    if key is None:
        raise ValueError(f"the demo's callback URL {url!r} is not the receiver's")
    if key.route_is_ambiguous:
        key = key.model_copy(update={"type_in_key": CallbackType(callback_type)})
    return key.pk, key.sk


def summarize(
    stack: dict[str, Any], scenario: Scenario, bus: BusEvents | None = None
) -> Summary:
    """Compare the simulator's callbacks with the table's records and the events.

    Pass the same `bus` to later calls to count the events read earlier too.
    """
    request_ids = list(scenario.request_ids.values())
    callbacks = simulator_callbacks(JsonClient(stack["simulator_url"]), request_ids)
    records = callback_records(stack, request_ids)
    bus = bus if bus is not None else BusEvents(stack)
    bus.drain()
    events = [
        event
        for event in bus.events
        if event.get("detail", {}).get("signature_request_id") in request_ids
    ]
    return compare(callbacks, records, events)


def compare(
    callbacks: list[dict[str, Any]],
    records: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> Summary:
    """Match every callback to its record and event and list each mismatch."""
    problems: list[str] = []
    by_key = {(item["pk"]["S"], item["sk"]["S"]): item for item in records}
    events_by_id = Counter(event["detail"]["callback_id"] for event in events)
    recovered_flags = {
        event["detail"]["callback_id"]: event["detail"].get("recovered")
        for event in events
    }
    rows = {name: TypeCounts() for name in CALLBACK_TYPES}
    matched: Counter[tuple[str, str]] = Counter()

    for callback in callbacks:
        row = rows[callback["type"]]
        label = f"{callback['type']} {callback['signature_request_id'][:8]}"
        deliveries = callback["deliveries"]
        ok_calls = sum(1 for item in deliveries if 200 <= (item["status"] or 0) < 300)
        row.callbacks += 1
        row.http_calls += len(deliveries)
        row.answered_2xx += ok_calls
        row.answered_503 += sum(1 for item in deliveries if item["status"] == 503)
        gave_up = callback["state"] == "RESIGNATED"
        row.resignated += gave_up
        if callback["state"] not in ("COMPLETED", "RESIGNATED"):
            problems.append(f"{label}: simulator state is {callback['state']}")
        key = expected_record_key(callback["url"], callback["type"])
        matched[key] += 1
        record = by_key.get(key)
        if record is None:
            reason = " (Skribble gave up; the audit recovers it)" if gave_up else ""
            problems.append(f"{label}: no record {key[1]}{reason}")
            continue
        row.records += 1
        recovered = record.get("record_source", {}).get("S") == "AUDIT"
        row.recovered += recovered
        if recovered and "recovered_at" not in record:
            problems.append(f"{label}: record from the audit lacks recovered_at")
        count = int(record["delivery_count"]["N"])
        row.record_deliveries += count
        if count != ok_calls:
            problems.append(
                f"{label}: record counts {count} deliveries, simulator got "
                f"{ok_calls} answers 2xx"
            )
        if record.get("event_status", {}).get("S") != "PUBLISHED":
            problems.append(f"{label}: record event_status is not PUBLISHED")
        callback_id = record["callback_id"]["S"]
        published = events_by_id.get(callback_id, 0)
        row.events += published
        if published != 1:
            problems.append(f"{label}: {published} events on the bus, expected 1")
        elif recovered_flags[callback_id] is not recovered:
            problems.append(
                f"{label}: event has recovered={recovered_flags[callback_id]}, "
                f"expected {recovered}"
            )

    for key, count in matched.items():
        if count > 1:
            problems.append(f"{count} callbacks share the record {key[1]}")
    extra_records = [
        key
        for key, item in by_key.items()
        if item.get("record_type", {}).get("S") == "CALLBACK" and key not in matched
    ]
    for key in extra_records:
        problems.append(f"record {key[1]} matches no callback the simulator sent")
    if len(events) != len(matched):
        problems.append(f"{len(events)} events on the bus for {len(matched)} callbacks")
    return Summary(
        rows=rows,
        problems=problems,
        records=records,
        events=events,
        callbacks=callbacks,
    )


def format_summary(summary: Summary) -> str:
    """Return the summary as a table with one row per callback type."""
    header = (
        f"{'type':<12} {'sent':>5} {'calls':>6} {'2xx':>5} {'503':>5} "
        f"{'resignated':>10} {'records':>8} {'recovered':>9} {'deliveries':>11} "
        f"{'events':>7}"
    )
    lines = [
        "Simulator sent / table records / bus events:",
        "",
        header,
        "-" * len(header),
    ]
    rows = [*summary.rows.items(), ("total", summary.total)]
    for name, row in rows:
        if name == "total":
            lines.append("-" * len(header))
        lines.append(
            f"{name:<12} {row.callbacks:>5} {row.http_calls:>6} "
            f"{row.answered_2xx:>5} {row.answered_503:>5} {row.resignated:>10} "
            f"{row.records:>8} {row.recovered:>9} {row.record_deliveries:>11} "
            f"{row.events:>7}"
        )
    lines += [
        "",
        "sent: callbacks the simulator fired; calls: HTTP requests including "
        "retries and duplicates;",
        "resignated: callbacks Skribble gave up on; records: table records they "
        "map to; recovered: records",
        "the audit wrote; deliveries: the records' delivery_count; events: "
        "events on the bus.",
        "",
    ]
    if summary.problems:
        lines.append(f"MISMATCH ({len(summary.problems)}):")
        lines += [f"  - {problem}" for problem in summary.problems]
    else:
        recovered = summary.total.recovered
        lines.append(
            "OK: every callback the simulator sent was recorded once and "
            "published once"
            + (f", {recovered} of them by the audit." if recovered else ".")
        )
    return "\n".join(lines)
