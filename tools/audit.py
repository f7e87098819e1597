"""Run the audit of Skribble's callback delivery on demand and print findings.

    python -m tools.audit --signature-request ID [--signature-request ID ...]
    python -m tools.audit --since 2h

Settings come from the same environment variables as the audit function
(TABLE_NAME, EVENT_BUS_NAME, SKRIBBLE_API_BASE_URL, ...); see
`skribble_receiver.audit_config`. The run acts like a scheduled one: it
recovers missed callbacks and publishes a summary event with mode
`on_demand`, but it neither reads nor writes the scheduled run's cursor.

The exit status is 0 when every callback is accounted for, 1 when the run
found anomalies, missed callbacks or errors, and 2 when it could not run.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import TextIO

from skribble_receiver.audit import Verdict
from skribble_receiver.audit_config import AuditSettings
from skribble_receiver.audit_run import (
    AuditReport,
    AuditRunFailed,
    create_audit_run,
    window_scope,
)
from skribble_receiver.config import ConfigurationError

_DURATION = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[mhd])$")
_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0}
COLUMNS = (
    "signature request",
    "type",
    "skribble",
    "attempts",
    "verdict",
    "action",
    "callback id",
)


def parse_duration_hours(text: str) -> float:
    """Parse `90m`, `2h` or `1d` into hours."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: expected a number and m, h or d, as in 2h"
        )
    return float(match["amount"]) * _UNIT_HOURS[match["unit"]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.audit",
        description="Audit Skribble's callback delivery log against the table.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--signature-request",
        action="append",
        metavar="ID",
        help="signature request to audit; repeat for several",
    )
    target.add_argument(
        "--since",
        type=parse_duration_hours,
        metavar="DURATION",
        help="audit the signature requests active in this window, e.g. 2h or 1d",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=600.0,
        help="stop starting new signature requests after this many seconds "
        "(default 600)",
    )
    parser.add_argument(
        "--problems-only",
        action="store_true",
        help="leave delivered and in-flight callbacks out of the table",
    )
    return parser


def format_table(report: AuditReport, *, problems_only: bool) -> str:
    """Render the findings and errors of a run as a plain-text table."""
    rows = [COLUMNS]
    for audit in report.audits:
        for finding in audit.findings:
            if problems_only and finding.verdict in (
                Verdict.DELIVERED,
                Verdict.IN_FLIGHT,
            ):
                continue
            rows.append(
                (
                    finding.signature_request_id,
                    finding.callback_type,
                    finding.skribble_state or "-",
                    "-" if finding.attempts is None else str(finding.attempts),
                    finding.verdict.value,
                    finding.action.value,
                    finding.callback_id or "-",
                )
            )
    for request_id, code in report.errors.items():
        rows.append((request_id, "-", "-", "-", "ERROR", code, "-"))
    widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    counts = report.counts()
    lines.append("")
    lines.append(
        f"audited {len(report.audits)} of {report.selected} signature requests; "
        + ", ".join(f"{name} {value}" for name, value in counts.items())
        + f"; errors {len(report.errors)}; deferred {len(report.deferred)}"
    )
    if report.listing_error:
        lines.append(
            f"listing signature requests at Skribble failed: {report.listing_error}"
        )
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = AuditSettings.from_environ()
    except ConfigurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    hours = args.since if args.since is not None else settings.lookback_hours
    scope = window_scope(datetime.now(UTC), hours, mode="on_demand")
    if args.signature_request:
        scope = replace(scope, signature_request_ids=tuple(args.signature_request))
    try:
        report = create_audit_run(settings).run(
            scope, budget_seconds=args.budget_seconds
        )
    except AuditRunFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(report, problems_only=args.problems_only), file=out)
    problems = report.anomalies + report.counts()["missed"] + report.error_count
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
