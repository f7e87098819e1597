"""The `/v2` API of the simulator: login, tokens, listing, callbacks, faults."""

import json
import time

import pytest

# Property names of an item of `SignatureCallbacksResponse` in Skribble's
# OpenAPI description of API v2.
CALLBACK_FIELDS = {
    "signature_request_id",
    "type",
    "state",
    "url",
    "attempts",
    "messages",
    "owner",
    "read_access",
    "write_access",
    "created_at",
    "updated_at",
}
CALLBACK_TYPES = {"SUCCESS", "UPDATE", "ERROR", "START_SIGN", "INITIATE", "IDENT_ERROR"}
CALLBACK_STATES = {"OPEN", "COMPLETED", "RESIGNATED"}
UNREACHABLE = "https://127.0.0.1:9/cb/SKRIBBLE_SIGNATURE_REQUEST_ID"


def test_login_returns_jwt_as_plain_text(client):
    result = client.call(
        "POST",
        "/v2/access/login",
        {"username": "api_demo_simulator", "api-key": "simulator-demo-key"},
    )

    assert result.status == 200
    assert result.headers["Content-Type"] == "text/plain"
    assert result.body.count(b".") == 2


def test_login_accepts_form_encoding(client):
    result = client.call(
        "POST",
        "/v2/access/login",
        raw_body=b"username=api_demo_simulator&api-key=simulator-demo-key",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert result.status == 200


def test_login_with_wrong_key_returns_401_problem(client):
    result = client.call(
        "POST", "/v2/access/login", {"username": "api_demo_simulator", "api-key": "x"}
    )

    assert result.status == 401
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.json()["status"] == 401


def test_login_without_api_key_returns_400(client):
    result = client.call("POST", "/v2/access/login", {"username": "api_demo_simulator"})

    assert result.status == 400
    assert "api-key" in result.json()["detail"]


def test_request_without_token_returns_401(client):
    result = client.call("GET", "/v2/signature-requests")

    assert result.status == 401
    assert "bearer" in result.json()["detail"]


def test_token_expires_after_configured_ttl(start_simulator):
    _, client = start_simulator(token_ttl=1)
    token = client.login()
    assert client.api("GET", "/v2/signature-requests", token).status == 200

    time.sleep(1.1)
    result = client.api("GET", "/v2/signature-requests", token)

    assert result.status == 401
    assert "expired" in result.json()["detail"]


def test_expire_tokens_fault_rejects_current_token(client):
    token = client.login()

    client.admin("/_sim/faults", {"expire_tokens": True})
    result = client.api("GET", "/v2/signature-requests", token)

    assert result.status == 401


def test_new_login_works_after_expire_tokens_fault(client):
    client.admin("/_sim/faults", {"expire_tokens": True})
    time.sleep(0.01)
    token = client.login()

    assert client.api("GET", "/v2/signature-requests", token).status == 200


def test_token_ttl_fault_shortens_new_tokens(client):
    client.admin("/_sim/faults", {"token_ttl": 0})
    token = client.login()

    assert client.api("GET", "/v2/signature-requests", token).status == 401


def test_get_signature_request_returns_signature_response(client):
    created = client.create(
        title="Lease", signatures=["a@example.com", "b@example.com"]
    )
    token = client.login()

    document = client.api("GET", f"/v2/signature-requests/{created['id']}", token)

    body = document.json()
    assert body["id"] == created["id"]
    assert body["document_id"] == created["document_id"]
    assert body["status_overall"] == "OPEN"
    assert [s["account_email"] for s in body["signatures"]] == [
        "a@example.com",
        "b@example.com",
    ]
    assert {s["status_code"] for s in body["signatures"]} == {"OPEN"}


def test_unknown_signature_request_returns_404(client):
    token = client.login()

    result = client.api("GET", "/v2/signature-requests/nope", token)

    assert result.status == 404


def test_list_pages_newest_first(client):
    ids = [client.create(title=f"Doc {n}")["id"] for n in range(3)]
    token = client.login()

    page_one = client.api(
        "GET", "/v2/signature-requests?page_number=1&page_size=2", token
    ).json()
    page_two = client.api(
        "GET", "/v2/signature-requests?page_number=2&page_size=2", token
    ).json()

    assert [item["id"] for item in page_one] == [ids[2], ids[1]]
    assert [item["id"] for item in page_two] == [ids[0]]


def test_list_without_page_number_returns_all(client):
    for n in range(3):
        client.create(title=f"Doc {n}")
    token = client.login()

    listed = client.api("GET", "/v2/signature-requests?page_size=1", token).json()

    assert len(listed) == 3


def test_list_filters_by_status_overall(client):
    open_id = client.create()["id"]
    signed_id = client.create()["id"]
    client.step(signed_id, "sign")
    token = client.login()

    listed = client.api(
        "GET", "/v2/signature-requests?status_overall=SIGNED", token
    ).json()

    assert [item["id"] for item in listed] == [signed_id]
    assert open_id not in [item["id"] for item in listed]


def test_list_filters_by_account_email_and_search(client):
    wanted = client.create(title="Lease contract", signatures=["x@example.com"])["id"]
    client.create(title="Lease contract", signatures=["y@example.com"])
    client.create(title="Other", signatures=["x@example.com"])
    token = client.login()

    listed = client.api(
        "GET", "/v2/signature-requests?account_email=x@example.com&search=Lease", token
    ).json()

    assert [item["id"] for item in listed] == [wanted]


def test_list_with_invalid_status_returns_400(client):
    token = client.login()

    result = client.api("GET", "/v2/signature-requests?status_overall=DONE", token)

    assert result.status == 400


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_callbacks_endpoint_items_have_openapi_fields(client, method):
    created = client.create(callback_update_url=UNREACHABLE)
    client.step(created["id"], "sign")
    token = client.login()

    result = client.api(
        method, f"/v2/signature-requests/{created['id']}/callbacks", token
    )

    items = result.json()
    assert result.status == 200
    assert len(items) == 1
    assert set(items[0]) == CALLBACK_FIELDS
    assert items[0]["type"] in CALLBACK_TYPES
    assert items[0]["state"] in CALLBACK_STATES
    assert isinstance(items[0]["attempts"], int)
    assert isinstance(items[0]["messages"], list)


def test_callbacks_endpoint_empty_before_any_callback(client):
    created = client.create(callback_update_url=UNREACHABLE)
    token = client.login()

    result = client.api(
        "POST", f"/v2/signature-requests/{created['id']}/callbacks", token
    )

    assert result.json() == []


def test_callbacks_get_405_fault_keeps_post_working(client):
    created = client.create()
    token = client.login()
    client.admin("/_sim/faults", {"callbacks_get_405": True})
    path = f"/v2/signature-requests/{created['id']}/callbacks"

    rejected = client.api("GET", path, token)
    accepted = client.api("POST", path, token)

    assert rejected.status == 405
    assert rejected.headers["Allow"] == "POST"
    assert accepted.status == 200


def test_callbacks_get_405_from_config(start_simulator):
    _, client = start_simulator(callbacks_get_405=True)
    created = client.create()
    token = client.login()

    result = client.api(
        "GET", f"/v2/signature-requests/{created['id']}/callbacks", token
    )

    assert result.status == 405


def test_login_429_fault_sends_retry_after(client):
    client.admin("/_sim/faults", {"login_429": 2, "retry_after": 7})
    credentials = {"username": "api_demo_simulator", "api-key": "simulator-demo-key"}

    first = client.call("POST", "/v2/access/login", credentials)
    second = client.call("POST", "/v2/access/login", credentials)
    third = client.call("POST", "/v2/access/login", credentials)

    assert first.status == 429
    assert first.headers["Retry-After"] == "7"
    assert second.status == 429
    assert third.status == 200


def test_api_429_fault_applies_to_authenticated_calls(client):
    token = client.login()
    client.admin("/_sim/faults", {"api_429": 1, "retry_after": 3})

    limited = client.api("GET", "/v2/signature-requests", token)
    after = client.api("GET", "/v2/signature-requests", token)

    assert limited.status == 429
    assert limited.headers["Retry-After"] == "3"
    assert after.status == 200


def test_api_503_fault_answers_service_unavailable(client):
    token = client.login()
    client.admin("/_sim/faults", {"api_503": 1})

    result = client.api("GET", "/v2/signature-requests", token)

    assert result.status == 503


def test_malformed_fault_breaks_json_once(client):
    token = client.login()
    client.admin("/_sim/faults", {"malformed": 1})

    broken = client.api("GET", "/v2/signature-requests", token)
    fine = client.api("GET", "/v2/signature-requests", token)

    assert broken.status == 200
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    assert fine.json() == []


def test_slow_fault_delays_answers(client):
    token = client.login()
    client.admin("/_sim/faults", {"slow_ms": 300})

    started = time.monotonic()
    client.api("GET", "/v2/signature-requests", token)

    assert time.monotonic() - started >= 0.3


def test_unknown_fault_rejected_with_its_name(client):
    result = client.call("POST", "/_sim/faults", {"explode": 1})

    assert result.status == 400
    assert "explode" in result.json()["detail"]


def test_fault_reset_clears_counters(client):
    client.admin("/_sim/faults", {"login_429": 5})

    state = client.admin("/_sim/faults", {"reset": True})

    assert state["login_429"] == 0


def test_wrong_method_returns_405_with_allow(client):
    result = client.call("DELETE", "/v2/access/login")

    assert result.status == 405
    assert result.headers["Allow"] == "POST"


def test_health_reports_base_url(sim):
    simulator, client = sim

    health = client.admin("/_sim/health")

    assert health["status"] == "ok"
    assert health["base_url"] == simulator.base_url


def test_create_through_api_returns_signature_response(client):
    token = client.login()

    result = client.call(
        "POST",
        "/v2/signature-requests",
        {"title": "Lease", "signatures": [{"account_email": "a@example.com"}]},
        headers={"Authorization": f"Bearer {token}"},
    )

    body = result.json()
    assert result.status == 200
    assert body["status_overall"] == "OPEN"
    assert body["signatures"][0]["account_email"] == "a@example.com"


def test_create_through_api_needs_token(client):
    result = client.call(
        "POST", "/v2/signature-requests", {"signatures": ["a@example.com"]}
    )

    assert result.status == 401
