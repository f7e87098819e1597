"""The audit copes with rate limits, expired tokens, bad and slow responses."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from skribble_receiver.audit_run import AuditRunFailed, create_audit_run, window_scope
from skribble_receiver.skribble_api import Credentials, SkribbleApiError, SkribbleClient
from tests.support.audit import (
    SIMULATOR_API_KEY,
    SIMULATOR_USERNAME,
    AuditBench,
    callback_events,
    create_credentials_secret,
)
from tests.support.sim_client import wait_for


def _missed_request(bench: AuditBench) -> str:
    bench.gateway.down = True
    request_id = bench.create_request()
    bench.sim.step(request_id, "sign")
    wait_for(
        lambda: all(
            callback["state"] == "RESIGNATED"
            for callback in bench.sim.callbacks(request_id)
        ),
        timeout=20,
    )
    bench.gateway.down = False
    return request_id


def test_rate_limit_waits_for_retry_after(audit_bench: AuditBench) -> None:
    request_id = _missed_request(audit_bench)
    audit_bench.sim.admin("/_sim/faults", {"api_429": 2, "retry_after": 1})

    started = time.monotonic()
    report = audit_bench.run_audit()
    elapsed = time.monotonic() - started

    assert elapsed >= 2.0
    assert report.errors == {}
    assert report.counts()["recovered"] == 2
    assert len(audit_bench.callback_records(request_id)) == 2


def test_rate_limit_longer_than_run_waits_fails_request(
    audit_bench: AuditBench,
) -> None:
    request_id = _missed_request(audit_bench)
    audit_bench.sim.admin("/_sim/faults", {"api_429": 100, "retry_after": 3600})

    window_report = audit_bench.run_audit(mode="on_demand")
    request_report = audit_bench.run_audit(
        mode="on_demand", signature_request_ids=(request_id,)
    )

    assert window_report.listing_error == "rate_limited"
    assert request_report.errors == {request_id: "rate_limited"}
    assert audit_bench.callback_records(request_id) == []


def test_expired_token_renewed_once(audit_bench: AuditBench) -> None:
    _missed_request(audit_bench)
    settings = audit_bench.settings()
    run = create_audit_run(settings)
    client: SkribbleClient = run._client
    client.token()
    audit_bench.sim.admin("/_sim/faults", {"expire_tokens": True})

    report = run.run(
        window_scope(_now(), settings.lookback_hours, mode="scheduled"),
        budget_seconds=60,
    )

    assert report.errors == {}
    assert report.counts()["recovered"] == 2
    assert client.logins == 2


def test_malformed_response_retried(audit_bench: AuditBench) -> None:
    request_id = _missed_request(audit_bench)
    audit_bench.sim.admin("/_sim/faults", {"malformed": 2})

    report = audit_bench.run_audit()

    assert report.errors == {}
    assert report.counts()["recovered"] == 2
    assert len(audit_bench.callback_records(request_id)) == 2


def test_slow_responses_time_out(audit_bench: AuditBench) -> None:
    request_id = _missed_request(audit_bench)
    client = SkribbleClient(
        audit_bench.simulator.base_url + "/v2",
        lambda: _credentials(),
        timeout=0.3,
        max_attempts=2,
    )
    client.token()
    audit_bench.sim.admin("/_sim/faults", {"slow_ms": 1000})

    with pytest.raises(SkribbleApiError) as raised:
        client.callbacks(request_id)

    assert raised.value.code == "timeout"
    assert client.retries == 1


def test_slow_request_does_not_stop_others(audit_bench: AuditBench) -> None:
    first = _missed_request(audit_bench)
    second = _missed_request(audit_bench)
    audit_bench.sim.admin("/_sim/faults", {"slow_ms": 600})

    report = audit_bench.run_audit(api_timeout_seconds=5.0)

    assert report.errors == {}
    assert len(audit_bench.callback_records(first)) == 2
    assert len(audit_bench.callback_records(second)) == 2
    assert len(callback_events(audit_bench.new_events())) == 4


def test_callbacks_get_405_falls_back_to_post(audit_bench: AuditBench) -> None:
    request_id = _missed_request(audit_bench)
    audit_bench.sim.admin("/_sim/faults", {"callbacks_get_405": True})

    report = audit_bench.run_audit()

    assert report.errors == {}
    assert len(audit_bench.callback_records(request_id)) == 2


def test_wrong_credentials_fail_the_run(audit_bench: AuditBench) -> None:
    secret = create_credentials_secret(api_key="wrong-key")

    with pytest.raises(AuditRunFailed, match="401"):
        audit_bench.run_audit(credentials_secret_arn=secret)


def _now() -> datetime:
    return datetime.now(UTC)


def _credentials() -> Credentials:
    return Credentials(SIMULATOR_USERNAME, SIMULATOR_API_KEY)


def test_token_expiring_mid_run_renewed(audit_bench: AuditBench) -> None:
    request_ids = [_missed_request(audit_bench) for _ in range(3)]
    settings = audit_bench.settings()
    run = create_audit_run(settings)
    client: SkribbleClient = run._client
    # Every Skribble response takes half a second, so the run lasts several
    # seconds, and Skribble expires the token while the run is under way.
    audit_bench.sim.admin("/_sim/faults", {"slow_ms": 500})
    expiry = threading.Timer(
        1.2, lambda: audit_bench.sim.admin("/_sim/faults", {"expire_tokens": True})
    )
    expiry.start()
    try:
        report = run.run(
            window_scope(_now(), settings.lookback_hours, mode="scheduled"),
            budget_seconds=120,
        )
    finally:
        expiry.cancel()
        audit_bench.sim.admin("/_sim/faults", {"slow_ms": 0})

    assert report.errors == {}
    assert report.counts()["recovered"] == 6
    assert client.logins >= 2
    for request_id in request_ids:
        assert len(audit_bench.callback_records(request_id)) == 2
