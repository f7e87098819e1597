"""Demo scenario against the running local stack: `python -m local.demo`.

Drives the Skribble simulator through signature requests with several
signers: signed, declined, withdrawn, an identification error, URLs in query
form (which Skribble HTML-encodes, so `&` arrives as `&amp;`), duplicate
deliveries, and a window in which the gateway answers 503 so that Skribble
retries. Then it compares what the simulator sent with the records in the
table and the events on the bus, prints a summary and exits 1 when they
disagree.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3

from local.resources import drain_events
from local.stack import DEFAULT_STATE_DIR, FAKE_CREDENTIALS

# Simulated seconds per real second during the demo: Skribble's 10-minute
# retry interval passes in one real second.
DEMO_TIME_SCALE = 600.0
SETTLE_TIMEOUT_SECONDS = 60.0
CALLBACK_TYPES = ("INITIATE", "START_SIGN", "UPDATE", "SUCCESS", "ERROR", "IDENT_ERROR")
_PLACEHOLDER_PREFIX = "SKRIBBLE_"


class DemoError(Exception):
    """Raised when the stack is not running or a step fails."""


def load_stack(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, Any]:
    """Read `stack.json` that a running `python -m local.stack` wrote."""
    path = state_dir / "stack.json"
    try:
        details: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise DemoError(
            f"{path} not found: start the local stack first with `make dev`"
        ) from None
    return details


class _Http:
    """JSON over HTTP to the simulator and the gateway control port."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        # The base URL is a loopback http URL from stack.json.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path,
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except OSError as exc:
            raise DemoError(
                f"{self.base_url}{path} failed: {exc}. Is the local stack running?"
            ) from exc


@dataclass
class Scenario:
    """The signature requests one demo run created, by what happens to them."""

    request_ids: dict[str, str] = field(default_factory=dict)
    # HTTP calls per completed callback, by signature request id.
    duplicates: dict[str, int] = field(default_factory=dict)


def _query_form_urls(gateway_url: str) -> dict[str, str]:
    ids = (
        "signature_request_id=SKRIBBLE_SIGNATURE_REQUEST_ID"
        "&document_id=SKRIBBLE_DOCUMENT_ID"
    )
    return {
        "callback_success_url": f"{gateway_url}/callbacks/success?{ids}",
        "callback_update_url": f"{gateway_url}/callbacks/update?{ids}"
        "&signature_id=SKRIBBLE_SIGNATURE_ID",
        "callback_error_url": f"{gateway_url}/callbacks/error?{ids}",
    }


def run_scenario(stack: dict[str, Any], say: Callable[[str], None] = print) -> Scenario:
    """Fire the scenario's callbacks and wait until every one is settled."""
    simulator = _Http(stack["simulator_url"])
    control = _Http(stack["admin_url"])
    path_urls = stack["callback_urls"]
    query_urls = _query_form_urls(stack["gateway_url"])
    scenario = Scenario()
    duplicates = 1

    def create(label: str, signers: list[str], urls: dict[str, str]) -> str:
        created = simulator.call(
            "/_sim/signature-requests",
            {"title": f"Demo: {label}", "signatures": signers, **urls},
        )
        request_id = str(created["id"])
        scenario.request_ids[label] = request_id
        scenario.duplicates[request_id] = duplicates
        return request_id

    def send_duplicates(count: int) -> None:
        nonlocal duplicates
        simulator.call("/_sim/faults", {"duplicates": count})
        duplicates = count

    def step(request_id: str, name: str, signer: str | None = None) -> None:
        payload = {} if signer is None else {"signer": signer}
        simulator.call(f"/_sim/signature-requests/{request_id}/{name}", payload)

    clock = simulator.call("/_sim/clock")
    faults = simulator.call("/_sim/faults")
    duplicates = int(faults["duplicates"])
    simulator.call("/_sim/clock", {"time_scale": DEMO_TIME_SCALE})
    try:
        say("1. Two signers sign; Skribble delivers every callback twice.")
        send_duplicates(2)
        signed = create("signed", ["alice@example.com", "bob@example.com"], path_urls)
        step(signed, "start-sign", "alice@example.com")
        step(signed, "sign", "alice@example.com")
        step(signed, "start-sign", "bob@example.com")
        step(signed, "sign", "bob@example.com")

        say("2. One signer signs, the other declines (duplicates continue).")
        declined = create(
            "declined", ["carol@example.com", "dave@example.com"], path_urls
        )
        step(declined, "sign", "carol@example.com")
        step(declined, "decline", "dave@example.com")
        send_duplicates(1)

        say("3. A request is initiated, then withdrawn.")
        withdrawn = create(
            "withdrawn", ["erin@example.com", "frank@example.com"], path_urls
        )
        step(withdrawn, "initiate")
        step(withdrawn, "withdraw")

        say("4. Identification fails, then the signer signs; query-form URLs.")
        ident = create("ident-error", ["grace@example.com"], query_urls)
        step(ident, "ident-error", "grace@example.com")
        step(ident, "sign", "grace@example.com")
        _wait_settled(simulator, scenario.duplicates)

        say("5. The receiver answers 503 for a while; Skribble retries.")
        control.call("/_local/outage", {"enabled": True})
        try:
            outage = create(
                "outage", ["heidi@example.com", "ivan@example.com"], path_urls
            )
            step(outage, "sign", "heidi@example.com")
            step(outage, "sign", "ivan@example.com")
            _wait_for(
                lambda: all(
                    callback["attempts"] >= 1
                    for callback in _callbacks(simulator, [outage])
                ),
                "the outage's first deliveries",
            )
        finally:
            control.call("/_local/outage", {"enabled": False})
        _wait_settled(simulator, scenario.duplicates)
    finally:
        simulator.call("/_sim/faults", {"duplicates": faults["duplicates"]})
        simulator.call("/_sim/clock", {"time_scale": clock["time_scale"]})
    return scenario


def _callbacks(simulator: _Http, request_ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for request_id in request_ids:
        found.extend(
            simulator.call(f"/_sim/callbacks?signature_request_id={request_id}")
        )
    return found


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise DemoError(
                f"Timed out after {SETTLE_TIMEOUT_SECONDS:.0f} s waiting for {what}"
            )
        time.sleep(0.1)


def _wait_settled(simulator: _Http, duplicates: dict[str, int]) -> None:
    """Wait until no callback is OPEN and every duplicate has been sent."""

    def settled() -> bool:
        callbacks = _callbacks(simulator, list(duplicates))
        for callback in callbacks:
            if callback["state"] == "OPEN":
                return False
            # The simulator sends the extra calls right after the first 2xx.
            extra = duplicates[callback["signature_request_id"]] - 1
            if callback["state"] == "COMPLETED" and (
                len(callback["deliveries"]) < callback["attempts"] + extra
            ):
                return False
        return True

    _wait_for(settled, "every callback to be settled")


@dataclass
class TypeCounts:
    """One row of the summary: what happened to the callbacks of one type."""

    callbacks: int = 0
    http_calls: int = 0
    answered_2xx: int = 0
    answered_503: int = 0
    records: int = 0
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


def expected_record_key(url: str) -> tuple[str, str]:
    """Return the (pk, sk) the receiver stores a callback URL under."""
    parts = urlsplit(html.unescape(url))
    segments = [segment for segment in parts.path.split("/") if segment]
    route = segments[1].upper().replace("-", "_")
    ids = segments[2:]
    if not ids:
        query = dict(parse_qsl(parts.query))
        ids = [
            query.get(name, "")
            for name in ("signature_request_id", "document_id", "signature_id")
        ]
    values = [*ids, "", "", ""][:3]
    request_id, document_id, signature_id = (
        "-" if not value or value.startswith(_PLACEHOLDER_PREFIX) else value
        for value in values
    )
    return f"SR#{request_id}", f"CALLBACK#{route}#{document_id}#{signature_id}"


def summarize(stack: dict[str, Any], scenario: Scenario) -> Summary:
    """Compare the simulator's callbacks with the table's records and the events."""
    request_ids = list(scenario.request_ids.values())
    callbacks = _callbacks(_Http(stack["simulator_url"]), request_ids)
    session = boto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=stack["region"],
    )
    dynamodb = session.client("dynamodb", endpoint_url=stack["moto_url"])
    records: list[dict[str, Any]] = []
    for request_id in request_ids:
        response = dynamodb.query(
            TableName=stack["table_name"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"SR#{request_id}"}},
        )
        records.extend(response["Items"])
    all_events = drain_events(
        stack["queue_url"],
        wait_seconds=1,
        sqs=session.client("sqs", endpoint_url=stack["moto_url"]),
    )
    events = [
        event
        for event in all_events
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
        if callback["state"] != "COMPLETED":
            problems.append(f"{label}: simulator state is {callback['state']}")
        key = expected_record_key(callback["url"])
        matched[key] += 1
        record = by_key.get(key)
        if record is None:
            problems.append(f"{label}: no record {key[1]}")
            continue
        row.records += 1
        count = int(record["delivery_count"]["N"])
        row.record_deliveries += count
        if count != ok_calls:
            problems.append(
                f"{label}: record counts {count} deliveries, simulator got "
                f"{ok_calls} answers 2xx"
            )
        if record.get("event_status", {}).get("S") != "PUBLISHED":
            problems.append(f"{label}: record event_status is not PUBLISHED")
        published = events_by_id.get(record["callback_id"]["S"], 0)
        row.events += published
        if published != 1:
            problems.append(f"{label}: {published} events on the bus, expected 1")

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
        problems.append(
            f"{len(events)} events on the bus for {len(matched)} recorded callbacks"
        )
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
        f"{'records':>8} {'deliveries':>11} {'events':>7}"
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
            f"{row.answered_2xx:>5} {row.answered_503:>5} {row.records:>8} "
            f"{row.record_deliveries:>11} {row.events:>7}"
        )
    lines += [
        "",
        "sent: callbacks the simulator fired; calls: HTTP requests including "
        "retries and duplicates;",
        "records: table records they map to; deliveries: the records' "
        "delivery_count; events: events on the bus.",
        "",
    ]
    if summary.problems:
        lines.append(f"MISMATCH ({len(summary.problems)}):")
        lines += [f"  - {problem}" for problem in summary.problems]
    else:
        lines.append(
            "OK: every callback the simulator sent was recorded once and "
            "published once."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description="Run the demo scenario against the running local stack.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="folder with stack.json (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        stack = load_stack(args.state_dir)
        started = time.monotonic()
        scenario = run_scenario(stack)
        summary = summarize(stack, scenario)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 2
    print()
    print(format_summary(summary))
    print(f"\nScenario took {time.monotonic() - started:.1f} s.")
    return 1 if summary.problems else 0


if __name__ == "__main__":
    sys.exit(main())
