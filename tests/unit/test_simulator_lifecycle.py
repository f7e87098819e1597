"""Driver steps: state changes and which callback each step fires to which URL."""

import pytest

from tests.support.sim_client import wait_for

URL_TEMPLATES = {
    "callback_success_url": (
        "/success/SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID"
    ),
    "callback_update_url": (
        "/update/SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID/SKRIBBLE_SIGNATURE_ID"
    ),
    "callback_error_url": "/error/SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID",
}


@pytest.fixture
def urls(receiver):
    return {field: receiver.base_url + path for field, path in URL_TEMPLATES.items()}


def _fired(result):
    return [callback["type"] for callback in result["callbacks"]]


def _fields(client, request_id):
    return [(c["type"], c["url_field"]) for c in client.callbacks(request_id)]


def test_sign_creates_new_document_id(client, urls):
    created = client.create(signatures=["a@example.com", "b@example.com"], **urls)

    result = client.step(created["id"], "sign", "a@example.com")

    assert result["signature_request"]["document_id"] != created["document_id"]


def test_partial_sign_fires_update_only(client, urls):
    created = client.create(signatures=["a@example.com", "b@example.com"], **urls)

    result = client.step(created["id"], "sign", "a@example.com")

    assert _fired(result) == ["UPDATE"]
    assert result["signature_request"]["status_overall"] == "OPEN"


def test_last_sign_fires_update_and_success(client, urls):
    created = client.create(signatures=["a@example.com", "b@example.com"], **urls)
    client.step(created["id"], "sign", "a@example.com")

    result = client.step(created["id"], "sign", "b@example.com")

    assert _fired(result) == ["UPDATE", "SUCCESS"]
    assert result["signature_request"]["status_overall"] == "SIGNED"


def test_update_url_carries_signer_sid_and_new_document(client, urls):
    created = client.create(signatures=["a@example.com", "b@example.com"], **urls)
    sid = created["signature_request"]["signatures"][0]["sid"]

    result = client.step(created["id"], "sign", sid)

    document_id = result["signature_request"]["document_id"]
    expected = f"/update/{created['id']}/{document_id}/{sid}"
    assert result["callbacks"][0]["url"].endswith(expected)


def test_success_url_carries_final_document(client, urls):
    created = client.create(**urls)

    result = client.step(created["id"], "sign")

    document_id = result["signature_request"]["document_id"]
    success = next(c for c in result["callbacks"] if c["type"] == "SUCCESS")
    assert success["url"].endswith(f"/success/{created['id']}/{document_id}")


def test_decline_fires_error_and_marks_declined(client, urls):
    created = client.create(signatures=["a@example.com", "b@example.com"], **urls)

    result = client.step(created["id"], "decline", "b@example.com")

    statuses = [s["status_code"] for s in result["signature_request"]["signatures"]]
    assert _fired(result) == ["ERROR"]
    assert result["signature_request"]["status_overall"] == "DECLINED"
    assert statuses == ["OPEN", "DECLINED"]


def test_withdraw_fires_error_and_withdraws_open_signers(client, urls):
    created = client.create(signatures=["a@example.com", "b@example.com"], **urls)
    client.step(created["id"], "sign", "a@example.com")

    result = client.step(created["id"], "withdraw")

    statuses = [s["status_code"] for s in result["signature_request"]["signatures"]]
    assert _fired(result) == ["ERROR"]
    assert result["signature_request"]["status_overall"] == "WITHDRAWN"
    assert statuses == ["SIGNED", "WITHDRAWN"]


def test_start_sign_uses_update_url(client, urls):
    created = client.create(**urls)

    result = client.step(created["id"], "start-sign")

    assert _fired(result) == ["START_SIGN"]
    assert result["callbacks"][0]["url"].endswith("/SKRIBBLE_SIGNATURE_ID")
    assert _fields(client, created["id"]) == [("START_SIGN", "callback_update_url")]


def test_ident_error_uses_error_url(client, urls):
    created = client.create(**urls)

    result = client.step(created["id"], "ident-error")

    assert _fired(result) == ["IDENT_ERROR"]
    assert result["signature_request"]["signatures"][0]["status_code"] == "OPEN"
    assert _fields(client, created["id"]) == [("IDENT_ERROR", "callback_error_url")]


def test_initiate_opens_draft_and_fires_initiate(client, urls):
    created = client.create(draft=True, **urls)
    assert created["signature_request"]["status_overall"] == "DRAFT"

    result = client.step(created["id"], "initiate")

    assert _fired(result) == ["INITIATE"]
    assert result["signature_request"]["status_overall"] == "OPEN"
    assert _fields(client, created["id"]) == [("INITIATE", "callback_update_url")]


def test_initiate_twice_conflicts(client, urls):
    created = client.create(**urls)
    client.step(created["id"], "initiate")

    result = client.call(
        "POST", f"/_sim/signature-requests/{created['id']}/initiate", {}
    )

    assert result.status == 409


def test_sign_on_draft_conflicts(client, urls):
    created = client.create(draft=True, **urls)

    result = client.call("POST", f"/_sim/signature-requests/{created['id']}/sign", {})

    assert result.status == 409
    assert "DRAFT" in result.json()["detail"]


def test_signing_twice_conflicts(client, urls):
    created = client.create(signatures=["a@example.com", "b@example.com"], **urls)
    client.step(created["id"], "sign", "a@example.com")

    result = client.call(
        "POST",
        f"/_sim/signature-requests/{created['id']}/sign",
        {"signer": "a@example.com"},
    )

    assert result.status == 409


def test_step_without_signer_needs_single_open_signer(client, urls):
    created = client.create(signatures=["a@example.com", "b@example.com"], **urls)

    result = client.call("POST", f"/_sim/signature-requests/{created['id']}/sign", {})

    assert result.status == 400
    assert "signer" in result.json()["detail"]


def test_unknown_signer_returns_404(client, urls):
    created = client.create(**urls)

    result = client.call(
        "POST",
        f"/_sim/signature-requests/{created['id']}/sign",
        {"signer": "nobody@example.com"},
    )

    assert result.status == 404


def test_non_loopback_callback_url_rejected(client):
    result = client.call(
        "POST",
        "/_sim/signature-requests",
        {
            "signatures": ["a@example.com"],
            "callback_success_url": "https://192.0.2.1/x",
        },
    )

    assert result.status == 400
    assert "not loopback" in result.json()["detail"]


def test_missing_url_fires_nothing(client):
    created = client.create()

    result = client.step(created["id"], "sign")

    assert result["callbacks"] == []


def test_request_routes_override_defaults(client, urls):
    created = client.create(
        callback_routes={"START_SIGN": "callback_error_url"}, **urls
    )

    client.step(created["id"], "start-sign")

    assert _fields(client, created["id"]) == [("START_SIGN", "callback_error_url")]


def test_config_route_none_disables_type(start_simulator, urls):
    routes = {
        "SUCCESS": "callback_success_url",
        "UPDATE": "callback_update_url",
        "ERROR": "callback_error_url",
        "START_SIGN": None,
        "INITIATE": "callback_update_url",
        "IDENT_ERROR": "callback_error_url",
    }
    _, client = start_simulator(routes=routes)
    created = client.create(**urls)

    result = client.step(created["id"], "start-sign")

    assert result["callbacks"] == []


def test_fired_callbacks_complete_at_receiver(client, urls, receiver):
    created = client.create(**urls)

    client.step(created["id"], "sign")

    def completed():
        found = client.callbacks(created["id"])
        return found if all(c["state"] == "COMPLETED" for c in found) else None

    callbacks = wait_for(completed)
    assert len(receiver.received()) == 2
    assert {c["type"] for c in callbacks} == {"UPDATE", "SUCCESS"}
