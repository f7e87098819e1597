"""Time budget, cursor and the Lambda handler of the audit."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from skribble_receiver.observability import metrics as metrics_object
from tests.integration.conftest import LambdaContext
from tests.support.audit import AuditBench, callback_events, summary_events
from tests.support.sim_client import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _missed_requests(bench: AuditBench, count: int) -> list[str]:
    bench.gateway.down = True
    request_ids = [bench.create_request() for _ in range(count)]
    for request_id in request_ids:
        bench.sim.step(request_id, "sign")
    wait_for(
        lambda: all(
            callback["state"] == "RESIGNATED" for callback in bench.sim.callbacks()
        ),
        timeout=20,
    )
    bench.gateway.down = False
    return request_ids


def test_budget_leaves_cursor_for_next_run(audit_bench: AuditBench) -> None:
    request_ids = _missed_requests(audit_bench, 4)
    audit_bench.sim.admin("/_sim/faults", {"slow_ms": 250})

    first = audit_bench.run_audit(budget_seconds=1.5, max_concurrency=1)
    audit_bench.sim.admin("/_sim/faults", {"reset": True})
    second = audit_bench.run_audit()

    assert first.deferred
    assert set(second.deferred) == set()
    assert set(first.deferred) <= {
        audit.signature_request_id for audit in second.audits
    }
    for request_id in request_ids:
        assert len(audit_bench.callback_records(request_id)) == 2
    events = audit_bench.new_events()
    assert len(callback_events(events)) == 8
    summaries = [event["detail"] for event in summary_events(events)]
    assert [summary["complete"] for summary in summaries] == [False, True]


def _load_handler() -> Any:
    spec = importlib.util.spec_from_file_location(
        "audit_app", ROOT / "functions" / "audit" / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_handler_recovers_and_emits_metrics(
    audit_bench: AuditBench,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    request_ids = _missed_requests(audit_bench, 1)
    settings = audit_bench.settings()
    environment = {
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
        "POWERTOOLS_SERVICE_NAME": "skribble-callbacks",
        "POWERTOOLS_METRICS_NAMESPACE": "SkribbleCallbacks",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # The shared Metrics object may have been created before these variables
    # were set, as happens only in tests.
    monkeypatch.setattr(metrics_object, "namespace", "SkribbleCallbacks")
    monkeypatch.setattr(metrics_object, "service", "skribble-callbacks")
    monkeypatch.delitem(sys.modules, "audit_app", raising=False)
    handler = _load_handler()
    metrics_object.clear_metrics()
    capsys.readouterr()

    event = json.loads((ROOT / "events" / "audit.json").read_text())
    detail = handler.lambda_handler(event, LambdaContext(remaining_ms=90_000))

    output = capsys.readouterr().out
    metrics = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    assert detail["callbacks"]["recovered"] == 2
    assert len(audit_bench.callback_records(request_ids[0])) == 2
    assert metrics
    assert _metric_sum(metrics[-1]["CallbacksMissed"]) == 2.0
    assert _metric_sum(metrics[-1]["CallbacksRecovered"]) == 2.0
    assert metrics[-1]["service"] == "skribble-callbacks"


def _metric_sum(value: float | list[float]) -> float:
    """Return an EMF value's total; EMF writes one value or a list of them."""
    return sum(value) if isinstance(value, list) else value


def test_handler_rejects_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from skribble_receiver.config import ConfigurationError

    monkeypatch.delenv("SKRIBBLE_API_BASE_URL", raising=False)

    with pytest.raises(ConfigurationError, match="SKRIBBLE_API_BASE_URL"):
        _load_handler()
