"""Callback delivery over HTTPS with a client certificate, retries and faults."""

import itertools
import json
import logging

import pytest

from tests.support.receiver import Answer
from tests.support.sim_client import wait_for

UPDATE_PATH = (
    "/callbacks/update/SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID"
    "/SKRIBBLE_SIGNATURE_ID"
)
# 10 simulated minutes pass in 0.1 s, so two simulated hours take about 1.2 s.
FAST = 6000


def _settled(client, request_id, count=1):
    def check():
        found = client.callbacks(request_id)
        if len(found) >= count and all(c["state"] != "OPEN" for c in found):
            return found
        return None

    return wait_for(check, timeout=20)


def _sign_once(client, receiver, query=""):
    created = client.create(callback_update_url=receiver.base_url + UPDATE_PATH + query)
    result = client.step(created["id"], "sign")
    return created, result


def test_client_certificate_presented(sim, receiver):
    _, client = sim
    created, _ = _sign_once(client, receiver)

    _settled(client, created["id"])

    assert receiver.received()[0].client_subject == "api.skribble.com"


def test_completed_callback_single_attempt(sim, receiver):
    _, client = sim
    created, _ = _sign_once(client, receiver)

    [callback] = _settled(client, created["id"])

    assert callback["state"] == "COMPLETED"
    assert callback["attempts"] == 1
    assert callback["messages"] == []


def test_received_path_has_placeholders_replaced(sim, receiver):
    _, client = sim
    created, result = _sign_once(client, receiver)
    _settled(client, created["id"])

    call = receiver.received()[0]

    document_id = result["signature_request"]["document_id"]
    sid = result["signature_request"]["signatures"][0]["sid"]
    assert call.method == "POST"
    assert call.target == f"/callbacks/update/{created['id']}/{document_id}/{sid}"


def test_received_query_is_html_encoded(sim, receiver):
    _, client = sim
    created, _ = _sign_once(client, receiver, "?token=abc&source=skribble")
    _settled(client, created["id"])

    call = receiver.received()[0]

    assert call.target.endswith("?token=abc&amp;source=skribble")


def test_callbacks_endpoint_url_is_the_called_url(sim, receiver):
    _, client = sim
    created, _ = _sign_once(client, receiver, "?token=abc&source=skribble")
    [callback] = _settled(client, created["id"])

    call = receiver.received()[0]

    assert callback["url"] == receiver.base_url + call.target


def test_body_is_small_json_naming_type(sim, receiver):
    _, client = sim
    created, _ = _sign_once(client, receiver)
    _settled(client, created["id"])

    body = json.loads(receiver.received()[0].body)

    assert body == {"signature_request_id": created["id"], "type": "UPDATE"}


def test_empty_body_option_sends_no_body(start_simulator, receiver):
    _, client = start_simulator(callback_body="empty")
    created, _ = _sign_once(client, receiver)
    _settled(client, created["id"])

    assert receiver.received()[0].body == b""


def test_failure_then_success_completes(start_simulator, receiver):
    _, client = start_simulator(time_scale=FAST)
    receiver.queue(Answer(503))
    created, _ = _sign_once(client, receiver)

    [callback] = _settled(client, created["id"])

    assert callback["state"] == "COMPLETED"
    assert callback["attempts"] == 2
    assert callback["messages"] == ["Failed 503"]


def test_retries_every_interval_until_resignated(start_simulator, receiver):
    _, client = start_simulator(time_scale=FAST)
    receiver.default_answer = Answer(503)
    created, _ = _sign_once(client, receiver)

    [callback] = _settled(client, created["id"])

    times = [d["scheduled_at_epoch"] for d in callback["deliveries"]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert callback["state"] == "RESIGNATED"
    assert callback["attempts"] == 13
    assert callback["messages"] == ["Failed 503"] * 13
    assert len(receiver.received()) == 13
    assert gaps == pytest.approx([600.0] * 12)


def test_retry_after_sets_pause_before_next_try(start_simulator, receiver):
    _, client = start_simulator(time_scale=600)
    receiver.queue(Answer(503, {"Retry-After": "30"}))
    created, _ = _sign_once(client, receiver)

    [callback] = _settled(client, created["id"])

    first, second = (d["scheduled_at_epoch"] for d in callback["deliveries"])
    assert callback["state"] == "COMPLETED"
    assert 30 <= second - first < 200


def test_429_with_retry_after_is_retried(start_simulator, receiver):
    _, client = start_simulator(time_scale=600)
    receiver.queue(Answer(429, {"Retry-After": "5"}))
    created, _ = _sign_once(client, receiver)

    [callback] = _settled(client, created["id"])

    assert callback["messages"] == ["Failed 429"]
    assert callback["state"] == "COMPLETED"


def test_retry_after_past_window_resignates(start_simulator, receiver):
    _, client = start_simulator(time_scale=FAST)
    receiver.queue(Answer(503, {"Retry-After": "10000"}))
    created, _ = _sign_once(client, receiver)

    [callback] = _settled(client, created["id"])

    assert callback["state"] == "RESIGNATED"
    assert callback["attempts"] == 1


def test_connection_refused_is_recorded(start_simulator, unused_port):
    _, client = start_simulator(time_scale=FAST, retry_window=1200)
    created = client.create(
        callback_update_url=f"https://127.0.0.1:{unused_port}" + UPDATE_PATH
    )
    client.step(created["id"], "sign")

    [callback] = _settled(client, created["id"])

    assert callback["state"] == "RESIGNATED"
    assert callback["attempts"] == 3
    assert set(callback["messages"]) == {"Failed: connection refused"}


def test_missing_client_certificate_fails_handshake(start_simulator, receiver):
    _, client = start_simulator(
        client_cert=None, client_key=None, time_scale=FAST, retry_window=0
    )
    created, _ = _sign_once(client, receiver)

    [callback] = _settled(client, created["id"])

    assert callback["state"] == "RESIGNATED"
    assert callback["messages"][0].startswith("Failed: ")
    assert receiver.received() == []


def test_clock_advance_triggers_due_retry(start_simulator, receiver):
    _, client = start_simulator(time_scale=1)
    receiver.queue(Answer(503))
    created, _ = _sign_once(client, receiver)
    wait_for(lambda: client.callbacks(created["id"])[0]["attempts"] == 1)

    client.admin("/_sim/clock", {"advance_seconds": 600})

    [callback] = _settled(client, created["id"])
    assert callback["attempts"] == 2
    assert callback["state"] == "COMPLETED"


def test_clock_jump_past_window_resignates(start_simulator, receiver):
    _, client = start_simulator(time_scale=1)
    receiver.default_answer = Answer(503)
    created, _ = _sign_once(client, receiver)
    wait_for(lambda: client.callbacks(created["id"])[0]["attempts"] == 1)

    client.admin("/_sim/clock", {"advance_seconds": 3 * 60 * 60})

    [callback] = _settled(client, created["id"])
    assert callback["state"] == "RESIGNATED"
    assert callback["attempts"] == 13


def test_time_scale_change_through_admin(start_simulator, receiver):
    _, client = start_simulator(time_scale=1)
    receiver.default_answer = Answer(503)
    created, _ = _sign_once(client, receiver)

    clock = client.admin("/_sim/clock", {"time_scale": FAST})

    [callback] = _settled(client, created["id"])
    assert clock["time_scale"] == FAST
    assert callback["state"] == "RESIGNATED"


def test_duplicates_send_same_callback_again(start_simulator, receiver):
    _, client = start_simulator(duplicates=3)
    created, _ = _sign_once(client, receiver)
    _settled(client, created["id"])

    [callback] = wait_for(
        lambda: [
            c for c in client.callbacks(created["id"]) if len(c["deliveries"]) == 3
        ]
    )

    targets = {call.target for call in receiver.received()}
    assert callback["attempts"] == 1
    assert [d["duplicate"] for d in callback["deliveries"]] == [False, True, True]
    assert len(targets) == 1


def test_acknowledge_elsewhere_completes_without_call(sim, receiver):
    _, client = sim
    client.admin("/_sim/faults", {"acknowledge_elsewhere": 1})
    created, _ = _sign_once(client, receiver)

    [callback] = _settled(client, created["id"])

    assert callback["state"] == "COMPLETED"
    assert callback["acknowledged_elsewhere"] is True
    assert receiver.received() == []


def test_parallel_deliveries_respect_bound(start_simulator, receiver):
    _, client = start_simulator(max_parallel=1)
    receiver.default_answer = Answer(200, delay_seconds=0.2)
    first, _ = _sign_once(client, receiver)
    second, _ = _sign_once(client, receiver)
    _settled(client, first["id"])
    _settled(client, second["id"])

    starts = sorted(call.received_at for call in receiver.received())

    assert starts[1] - starts[0] >= 0.2


def test_log_line_shows_attempt_outcome(start_simulator, receiver, caplog):
    caplog.set_level(logging.INFO, logger="local.simulator")
    _, client = start_simulator(time_scale=FAST)
    receiver.queue(Answer(503))
    created, _ = _sign_once(client, receiver, "?token=secret-value")
    _settled(client, created["id"])

    lines = [r.getMessage() for r in caplog.records if r.name.endswith("delivery")]

    assert any(
        f"callback UPDATE sr={created['id']} attempt=1" in line
        and "-> Failed 503 retry in 600s" in line
        for line in lines
    )
    assert any("attempt=2" in line and "COMPLETED" in line for line in lines)
    assert not any("secret-value" in line for line in lines)


def test_resignated_callback_logged_as_warning(start_simulator, receiver, caplog):
    caplog.set_level(logging.INFO, logger="local.simulator")
    _, client = start_simulator(time_scale=FAST, retry_window=0)
    receiver.default_answer = Answer(503)
    created, _ = _sign_once(client, receiver)
    _settled(client, created["id"])

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    assert len(warnings) == 1
    assert "RESIGNATED after 1 attempts" in warnings[0]


@pytest.fixture
def unused_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
