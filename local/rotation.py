"""Rehearse a client certificate rotation against the local stack.

Run `python -m local.rotation` (`make rotation-rehearsal`) while `make dev`
runs. The stack's truststore holds the chains of both the current and the
next client certificate, and `make dev` pins both, as in the overlap stage of
the rotation runbook. The rehearsal then runs these phases:

1. `current`: callbacks sent with the current certificate.
2. `switch in flight`: callbacks fired, and the simulator switched to the
   next certificate while they are being delivered.
3. `next`: callbacks sent with the next certificate.
4. `old pin removed`: the records of phase 3 checked against the next
   certificate's pin alone. The functions keep running with both pins, so
   this phase shows that removing the old pin would reject none of them.

For each callback it compares the simulator's delivery log with the table
and the bus: one record and one event per callback, and the record's
`client_certificate.sha256` equal to the certificate the delivery presented.
It prints one row per phase and exits 1 when any callback was rejected, not
recorded, published other than once or recorded with an unexpected
certificate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from local.ca import CLIENT_HOST, ClientCertificate
from local.pki import Issued, make_leaf
from local.resources import drain_events
from local.stack import DEFAULT_STATE_DIR, FAKE_CREDENTIALS

SETTLE_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.2
# How many seconds of bus delivery to wait for after the last callback.
EVENT_WAIT_SECONDS = 1
SHA_PREFIX = 12


class RehearsalError(Exception):
    """Raised when the stack is not running or a step of the rehearsal fails."""


@dataclass
class SentCallback:
    """One callback the simulator fired and what its first delivery presented."""

    phase: str
    signature_request_id: str
    pk: str
    sk: str
    status: int | None = None
    message: str = ""
    presented_sha256: str | None = None


@dataclass
class PhaseResult:
    """One row of the rehearsal's table."""

    name: str
    sent: int = 0
    recorded: int = 0
    rejected: int = 0
    events: int = 0
    seen: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def load_stack(state_dir: Path) -> dict[str, Any]:
    """Read `stack.json` that a running `python -m local.stack` wrote."""
    path = state_dir / "stack.json"
    try:
        details: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise RehearsalError(
            f"{path} not found: start the local stack first with `make dev`"
        ) from None
    if "client_certificates" not in details:
        raise RehearsalError(
            f"{path} lists no client certificates: restart `make dev` so that "
            "the stack issues the next certificate"
        )
    return details


class _Simulator:
    """JSON over HTTP to the simulator's driver API on loopback."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def call(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        # The base URL is the loopback http URL from stack.json.
        request = urllib.request.Request(  # noqa: S310
            self.base_url + path,
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RehearsalError(
                f"{self.base_url}{path} failed with {exc.code}: {detail}"
            ) from exc
        except OSError as exc:
            raise RehearsalError(
                f"{self.base_url}{path} failed: {exc}. Is the local stack running?"
            ) from exc

    def present(self, selection: dict[str, str]) -> str:
        """Switch the client certificate; return the SHA-256 it now presents."""
        answer = self.call("/_sim/client-certificate", selection)
        return str(answer["sha256"])


def record_key(url: str) -> tuple[str, str]:
    """Return the table key of a path-form callback URL as the receiver builds it."""
    parts = urlsplit(url).path.strip("/").split("/")
    if len(parts) < 4 or parts[0] != "callbacks":
        raise RehearsalError(f"unexpected callback URL path {url!r}: use path form")
    route, request_id, document_id = parts[1], parts[2], parts[3]
    signature_id = parts[4] if len(parts) > 4 else "-"
    route_type = route.upper().replace("-", "_")
    return f"SR#{request_id}", f"CALLBACK#{route_type}#{document_id}#{signature_id}"


class Rehearsal:
    """The phases of one rehearsal against one running local stack."""

    def __init__(
        self,
        stack: dict[str, Any],
        *,
        requests_per_phase: int = 3,
        say: Callable[[str], None] = print,
    ) -> None:
        self.stack = stack
        self.requests_per_phase = requests_per_phase
        self.say = say
        self.simulator = _Simulator(stack["simulator_url"])
        self.certificates = {
            name: ClientCertificate(
                cert=Path(entry["cert"]),
                key=Path(entry["key"]),
                sha256=entry["sha256"],
                public_key_sha256=entry["public_key_sha256"],
            )
            for name, entry in stack["client_certificates"].items()
        }
        session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=stack["region"],
        )
        self.dynamodb = session.client("dynamodb", endpoint_url=stack["moto_url"])
        self.sqs = session.client("sqs", endpoint_url=stack["moto_url"])
        self.sent: list[SentCallback] = []

    def run(self, next_selection: dict[str, str] | None = None) -> list[PhaseResult]:
        """Run every phase and return the table's rows.

        `next_selection` is the switch request body for the next certificate;
        the default is the stack's `next` certificate.
        """
        next_selection = next_selection or {"certificate": "next"}
        self._report_pins()
        current_sha = self.simulator.present({"certificate": "current"})
        self.say(f"1. Sending with the current certificate {current_sha[:12]}")
        self._fire("current")
        self._settle("current")

        self.say("2. Switching to the next certificate while callbacks are sent")
        self._fire("switch in flight")
        next_sha = self.simulator.present(next_selection)
        self._settle("switch in flight")

        self.say(f"3. Sending with the next certificate {next_sha[:12]}")
        self._fire("next")
        self._settle("next")

        return self._evaluate(current_sha, next_sha)

    def restore(self) -> None:
        """Switch the simulator back to the current certificate."""
        self.simulator.present({"certificate": "current"})

    def _report_pins(self) -> None:
        pins = self.stack.get("client_pins", {}).get("ClientCertSha256Pins", "")
        pinned = [pin.strip().lower().replace(":", "") for pin in pins.split(",")]
        for name, certificate in self.certificates.items():
            state = "pinned" if certificate.sha256 in pinned else "not pinned"
            self.say(f"   {name} certificate {certificate.sha256[:12]} is {state}")
        if not pins:
            self.say(
                "   The functions run without pins: start `make dev` with "
                "PIN_CLIENT_CERTS=1 to rehearse the pin stage too."
            )

    def _fire(self, phase: str) -> None:
        urls = self.stack["callback_urls"]
        for number in range(self.requests_per_phase):
            created = self.simulator.call(
                "/_sim/signature-requests",
                {
                    "title": f"Rotation rehearsal: {phase} {number + 1}",
                    "signatures": ["signer@example.com"],
                    **urls,
                },
            )
            request_id = str(created["id"])
            # One signer signs: UPDATE and then SUCCESS.
            step = self.simulator.call(
                f"/_sim/signature-requests/{request_id}/sign", {}
            )
            for fired in step["callbacks"]:
                pk, sk = record_key(fired["url"])
                self.sent.append(
                    SentCallback(
                        phase=phase, signature_request_id=request_id, pk=pk, sk=sk
                    )
                )

    def _settle(self, phase: str) -> None:
        """Wait until every callback of `phase` has had its first delivery."""
        pending = [sent for sent in self.sent if sent.phase == phase]
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while pending:
            for request_id in {sent.signature_request_id for sent in pending}:
                self._read_deliveries(request_id, pending)
            pending = [sent for sent in pending if not sent.message]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise RehearsalError(
                    f"{len(pending)} callbacks of phase {phase!r} were not "
                    f"delivered within {SETTLE_TIMEOUT_SECONDS:.0f} s: check the "
                    "`make dev` output"
                )
            time.sleep(POLL_SECONDS)

    def _read_deliveries(self, request_id: str, pending: list[SentCallback]) -> None:
        log = self.simulator.call(f"/_sim/callbacks?signature_request_id={request_id}")
        for entry in log:
            first = next(
                (item for item in entry["deliveries"] if not item["duplicate"]), None
            )
            if first is None:
                continue
            pk, sk = record_key(entry["url"])
            for sent in pending:
                if (sent.pk, sent.sk) == (pk, sk):
                    sent.status = first["status"]
                    sent.message = first["message"]
                    sent.presented_sha256 = first.get("client_cert_sha256")

    def _evaluate(self, current_sha: str, next_sha: str) -> list[PhaseResult]:
        records = self.records()
        events = Counter(
            event["detail"].get("callback_id")
            for event in drain_events(
                self.stack["queue_url"], wait_seconds=EVENT_WAIT_SECONDS, sqs=self.sqs
            )
        )
        rows: list[PhaseResult] = []
        for phase in ("current", "switch in flight", "next"):
            row = PhaseResult(phase)
            expected = {"current": current_sha, "next": next_sha}.get(phase)
            for sent in (item for item in self.sent if item.phase == phase):
                self._check(sent, records, events, expected, row)
            rows.append(row)
        rows.append(self._old_pin_removed(records, next_sha))
        return rows

    def _check(
        self,
        sent: SentCallback,
        records: dict[tuple[str, str], dict[str, Any]],
        events: Counter[str | None],
        expected_sha: str | None,
        row: PhaseResult,
    ) -> None:
        row.sent += 1
        label = f"{sent.sk.split('#')[1]} of {sent.signature_request_id}"
        if sent.status is None or not 200 <= sent.status < 300:
            row.rejected += 1
            row.problems.append(f"{label} was rejected: {sent.message}")
        record = records.get((sent.pk, sent.sk))
        if record is None:
            row.problems.append(f"{label} has no record in the table")
            return
        row.recorded += 1
        sha = record["client_certificate"]["M"]["sha256"]["S"]
        row.seen[sha[:SHA_PREFIX]] += 1
        callback_id = record["callback_id"]["S"]
        row.events += events[callback_id]
        if events[callback_id] != 1:
            row.problems.append(
                f"{label} was published {events[callback_id]} times, expected once"
            )
        expected = expected_sha or sent.presented_sha256
        if sha != expected:
            row.problems.append(
                f"{label} was recorded with certificate {sha[:SHA_PREFIX]}, "
                f"expected {str(expected)[:SHA_PREFIX]}"
            )

    def _old_pin_removed(
        self, records: dict[tuple[str, str], dict[str, Any]], next_sha: str
    ) -> PhaseResult:
        # The receiver's pin check, applied to the records of the `next`
        # phase with the next certificate's pin alone.
        row = PhaseResult("old pin removed")
        for sent in (item for item in self.sent if item.phase == "next"):
            row.sent += 1
            record = records.get((sent.pk, sent.sk))
            if record is None:
                continue
            sha = record["client_certificate"]["M"]["sha256"]["S"]
            row.seen[sha[:SHA_PREFIX]] += 1
            if sha == next_sha:
                row.recorded += 1
            else:
                row.rejected += 1
                row.problems.append(
                    f"{sent.sk} carries {sha[:SHA_PREFIX]}, which only the old "
                    "pin accepts"
                )
        return row

    def records(self) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for pk in sorted({sent.pk for sent in self.sent}):
            items = self.dynamodb.query(
                TableName=self.stack["table_name"],
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ConsistentRead=True,
            )["Items"]
            for item in items:
                found[(item["pk"]["S"], item["sk"]["S"])] = item
        return found


def issue_server_auth_only(stack: dict[str, Any]) -> dict[str, str]:
    """Issue a serverAuth-only successor and return the switch request body.

    It has the next certificate's issuer and key, so only its extended key
    usage differs, as with a renewal under the browser root programs' rules.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pki = stack["pki"]
    issuer_key = serialization.load_pem_private_key(
        Path(pki["next_intermediate_key"]).read_bytes(), password=None
    )
    issuer = Issued(
        cert=x509.load_pem_x509_certificate(
            Path(pki["next_intermediate_cert"]).read_bytes()
        ),
        key=issuer_key,  # type: ignore[arg-type]
    )
    next_entry = stack["client_certificates"]["next"]
    key = serialization.load_pem_private_key(
        Path(next_entry["key"]).read_bytes(), password=None
    )
    leaf = make_leaf(issuer, CLIENT_HOST, client=False, server=True, key=key)  # type: ignore[arg-type]
    directory = Path(next_entry["cert"]).parent
    cert_path = directory / "next-client-server-auth-only.pem"
    cert_path.write_bytes(leaf.pem() + issuer.pem())
    return {"cert": str(cert_path), "key": next_entry["key"]}


def format_table(rows: list[PhaseResult]) -> str:
    """Return the per-phase table as aligned text."""
    header = ("phase", "sent", "recorded", "rejected", "events", "certificate seen")
    lines = [header]
    for row in rows:
        seen = ", ".join(f"{sha} x{count}" for sha, count in sorted(row.seen.items()))
        lines.append(
            (
                row.name,
                str(row.sent),
                str(row.recorded),
                str(row.rejected),
                str(row.events) if row.name != "old pin removed" else "-",
                seen or "-",
            )
        )
    widths = [max(len(line[column]) for line in lines) for column in range(6)]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.rotation",
        description="Rehearse a rotation of Skribble's client certificate "
        "against the running local stack (`make dev`).",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="folder with the stack's stack.json (default: %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=3,
        help="signature requests per phase, two callbacks each (default: %(default)s)",
    )
    parser.add_argument(
        "--next-eku",
        choices=("clientAuth", "serverAuth"),
        default="clientAuth",
        help="extended key usage of the next certificate: serverAuth issues a "
        "serverAuth-only successor, whose handshake the gateway rejects",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.requests < 1:
        _parser().error(f"invalid --requests {args.requests}: use 1 or more")
    try:
        stack = load_stack(args.state_dir.resolve())
        rehearsal = Rehearsal(stack, requests_per_phase=args.requests)
        selection = None
        if args.next_eku == "serverAuth":
            selection = issue_server_auth_only(stack)
            print(f"Next certificate is serverAuth only: {selection['cert']}")
        try:
            rows = rehearsal.run(selection)
        finally:
            # Leave the stack as `make dev` started it, so that callbacks the
            # gateway rejected are delivered again on Skribble's retries.
            rehearsal.restore()
    except RehearsalError as exc:
        print(f"Rehearsal failed: {exc}", file=sys.stderr)
        return 1
    print()
    print(format_table(rows))
    problems = [problem for row in rows for problem in row.problems]
    for problem in problems:
        print(f"  problem: {problem}")
    if problems:
        print(f"\nRehearsal failed: {len(problems)} problems")
        return 1
    print("\nRehearsal passed: no callback rejected, every one recorded once.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
