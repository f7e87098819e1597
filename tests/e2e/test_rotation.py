"""The rotation rehearsal against a stack that pins both client certificates.

This stack runs as `make dev` does by default, with the current and the next
certificate pinned. It is separate from the session's unpinned stack, so
that tests which issue their own api.skribble.com certificates keep working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.rotation import PhaseResult, Rehearsal, issue_server_auth_only
from tests.e2e.conftest import running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pinned_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("pinned-stack")
    with running_stack(state_dir, "--pin-client-certificates") as details:
        yield details


@pytest.fixture(scope="module")
def rehearsal(pinned_stack: dict[str, Any]) -> Rehearsal:
    return Rehearsal(pinned_stack, requests_per_phase=3, say=lambda line: None)


@pytest.fixture(scope="module")
def rows(rehearsal: Rehearsal) -> dict[str, PhaseResult]:
    try:
        results = rehearsal.run()
    finally:
        rehearsal.restore()
    return {row.name: row for row in results}


def _fingerprint(stack: dict[str, Any], name: str) -> str:
    return str(stack["client_certificates"][name]["sha256"])


def test_stack_pins_both_certificates(pinned_stack):
    pins = pinned_stack["client_pins"]["ClientCertSha256Pins"].split(",")

    assert pins == [
        _fingerprint(pinned_stack, "current"),
        _fingerprint(pinned_stack, "next"),
    ]


def test_rehearsal_rejects_no_callback(rows):
    rejected = {name: row.rejected for name, row in rows.items()}

    assert rejected == {
        "current": 0,
        "switch in flight": 0,
        "next": 0,
        "old pin removed": 0,
    }


def test_rehearsal_records_each_callback_once(rows):
    for name in ("current", "switch in flight", "next"):
        assert rows[name].sent == 6, name
        assert rows[name].recorded == rows[name].sent, name


def test_rehearsal_publishes_each_callback_once(rows):
    for name in ("current", "switch in flight", "next"):
        assert rows[name].events == rows[name].sent, name


def test_rehearsal_reports_no_problem(rows):
    problems = [problem for row in rows.values() for problem in row.problems]

    assert problems == []


def test_records_before_switch_carry_current_certificate(rows, rehearsal, pinned_stack):
    records = rehearsal.records()
    current = _fingerprint(pinned_stack, "current")

    for sent in (item for item in rehearsal.sent if item.phase == "current"):
        record = records[(sent.pk, sent.sk)]
        assert record["client_certificate"]["M"]["sha256"]["S"] == current


def test_records_after_switch_carry_next_certificate(rows, rehearsal, pinned_stack):
    records = rehearsal.records()
    successor = _fingerprint(pinned_stack, "next")

    for sent in (item for item in rehearsal.sent if item.phase == "next"):
        assert sent.presented_sha256 == successor
        record = records[(sent.pk, sent.sk)]
        assert record["client_certificate"]["M"]["sha256"]["S"] == successor


def test_records_in_flight_carry_presented_certificate(rows, rehearsal):
    records = rehearsal.records()

    for sent in (item for item in rehearsal.sent if item.phase == "switch in flight"):
        record = records[(sent.pk, sent.sk)]
        assert record["client_certificate"]["M"]["sha256"]["S"] == (
            sent.presented_sha256
        )


def test_server_auth_only_successor_fails_handshake(rows, pinned_stack):
    # Runs after the main rehearsal (it needs `rows`), so that its failed
    # callbacks cannot mix into the rows the other tests check.
    rehearsal = Rehearsal(pinned_stack, requests_per_phase=1, say=lambda line: None)
    selection = issue_server_auth_only(pinned_stack)
    try:
        results = {row.name: row for row in rehearsal.run(selection)}
    finally:
        rehearsal.restore()
    log = (Path(pinned_stack["state_dir"]) / "stack.log").read_text()

    assert results["current"].rejected == 0
    assert results["next"].rejected == 2
    assert results["next"].recorded == 0
    assert "unsuitable certificate purpose" in log
