"""Demo scenarios against the running local stack: `python -m local.demo`.

The delivery scenario drives the Skribble simulator through signature
requests with several signers: signed, declined, withdrawn, an
identification error, URLs in query form (which Skribble HTML-encodes, so
`&` arrives as `&amp;`), duplicate deliveries, and a window in which the
gateway returns 503 so that Skribble retries. Then it compares what the
simulator sent with the records in the table and the events on the bus and
prints a summary.

The outage scenario (`local.demo_outage`) keeps the gateway down until
Skribble gives up, then runs the audit twice. Both run by default; the
command exits 1 when simulator, table and bus disagree at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local.demo_client import (
    DEMO_TIME_SCALE,
    BusEvents,
    DemoError,
    JsonClient,
    Scenario,
    load_stack,
    simulator_callbacks,
    wait_for,
)
from local.demo_outage import run_outage
from local.demo_summary import Summary, format_summary, summarize
from local.stack import DEFAULT_STATE_DIR

__all__ = ["Summary", "format_summary", "run_scenario", "summarize"]


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
    simulator = JsonClient(stack["simulator_url"])
    control = JsonClient(stack["admin_url"])
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
            wait_for(
                lambda: all(
                    callback["attempts"] >= 1
                    for callback in simulator_callbacks(simulator, [outage])
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


def _wait_settled(simulator: JsonClient, duplicates: dict[str, int]) -> None:
    """Wait until no callback is OPEN and every duplicate has been sent."""

    def settled() -> bool:
        callbacks = simulator_callbacks(simulator, list(duplicates))
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

    wait_for(settled, "every callback to be settled")


SCENARIOS = ("all", "delivery", "outage")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo",
        description="Run the demo scenarios against the running local stack.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="folder with stack.json (default: %(default)s)",
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="all",
        help="delivery: retries and duplicates; outage: Skribble gives up and "
        "the audit recovers; all: both, in this order (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    problems = 0
    try:
        stack = load_stack(args.state_dir)
        bus = BusEvents(stack)
        if args.scenario in ("all", "delivery"):
            started = time.monotonic()
            print("== Delivery: retries, duplicates and a short outage ==")
            scenario = run_scenario(stack)
            summary = summarize(stack, scenario, bus)
            print()
            print(format_summary(summary))
            print(f"\nScenario took {time.monotonic() - started:.1f} s.")
            problems += len(summary.problems)
        if args.scenario in ("all", "outage"):
            started = time.monotonic()
            if args.scenario == "all":
                print()
            print("== Outage: Skribble gives up, the audit recovers ==")
            result = run_outage(stack, bus)
            print(f"\nScenario took {time.monotonic() - started:.1f} s.")
            problems += len(result.problems)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
