"""The operator command runs the audit and prints its findings."""

from __future__ import annotations

import io

import pytest

from tests.support.audit import AuditBench
from tests.support.sim_client import wait_for
from tools import audit as audit_cli


@pytest.fixture
def audit_environment(audit_bench: AuditBench, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = audit_bench.settings()
    values = {
        "TABLE_NAME": settings.table_name,
        "EVENT_BUS_NAME": settings.event_bus_name,
        "EVENT_SOURCE": settings.event_source,
        "RECORD_RETENTION_DAYS": "400",
        "SKRIBBLE_API_BASE_URL": settings.skribble_api_base_url,
        "SKRIBBLE_CREDENTIALS_SECRET_ARN": settings.credentials_secret_arn,
        "SKRIBBLE_API_TIMEOUT_SECONDS": "5",
        "AUDIT_LOOKBACK_HOURS": "6",
        "AUDIT_UNPUBLISHED_GRACE_SECONDS": "300",
        "AUDIT_DEGRADED_ATTEMPTS": "3",
        "AUDIT_MAX_CONCURRENCY": "2",
        "AUDIT_STOP_BEFORE_TIMEOUT_SECONDS": "30",
        "AUDIT_MAX_LIST_PAGES": "5",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("audit_environment")
def test_cli_recovers_one_request(audit_bench: AuditBench) -> None:
    audit_bench.gateway.down = True
    request_id = audit_bench.create_request()
    audit_bench.sim.step(request_id, "sign")
    wait_for(
        lambda: all(
            callback["state"] == "RESIGNATED"
            for callback in audit_bench.sim.callbacks(request_id)
        ),
        timeout=20,
    )
    out = io.StringIO()

    status = audit_cli.main(["--signature-request", request_id], out=out)

    lines = out.getvalue().splitlines()
    rows = [line for line in lines if line.startswith(request_id)]
    assert status == 1
    assert lines[0].split()[:2] == ["signature", "request"]
    assert len(rows) == 2
    assert all("MISSED" in row and "RECOVERED" in row for row in rows)
    assert len(audit_bench.callback_records(request_id)) == 2


@pytest.mark.usefixtures("audit_environment")
def test_cli_window_clean_exits_zero(audit_bench: AuditBench) -> None:
    request_id = audit_bench.create_request()
    audit_bench.sim.step(request_id, "sign")
    wait_for(lambda: len(audit_bench.callback_records(request_id)) == 2)
    out = io.StringIO()

    status = audit_cli.main(["--since", "2h", "--problems-only"], out=out)

    assert status == 0
    assert request_id not in out.getvalue()
    assert "audited 1 of 1 signature requests" in out.getvalue()


def test_cli_rejects_bad_duration(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        audit_cli.main(["--since", "two hours"])

    assert "invalid duration 'two hours'" in capsys.readouterr().err
