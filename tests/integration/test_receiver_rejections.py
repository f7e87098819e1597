"""Deliveries the receiver rejects: they get a 4xx and leave nothing behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from local.pki import make_intermediate, make_leaf, make_root
from skribble_receiver.receiver import create_app
from tests.integration.conftest import LambdaContext
from tests.support.callbacks import (
    DOC,
    SR,
    callback_records,
    path_delivery,
    published_events,
    response_body,
    table_items,
)


@pytest.fixture
def success_app(settings_for):
    return create_app(settings_for("SUCCESS"))


def assert_nothing_stored(stack) -> None:
    assert table_items(stack) == []
    assert published_events(stack) == []


def test_missing_client_certificate_is_rejected(success_app, stack):
    response = success_app.resolve(
        path_delivery("SUCCESS", [SR, DOC], None), LambdaContext()
    )

    assert response["statusCode"] == 403
    assert response_body(response)["error"] == "certificate_missing"
    assert_nothing_stored(stack)


def test_certificate_for_another_host_is_rejected(success_app, stack, skribble_chain):
    stranger = make_leaf(skribble_chain.intermediate, "callbacks.attacker.example")

    response = success_app.resolve(
        path_delivery("SUCCESS", [SR, DOC], stranger), LambdaContext()
    )

    assert response["statusCode"] == 403
    assert response_body(response)["error"] == "certificate_host_not_allowed"
    assert_nothing_stored(stack)


def test_expired_certificate_is_rejected(success_app, stack, skribble_chain):
    now = datetime.now(UTC)
    expired = make_leaf(
        skribble_chain.intermediate,
        "api.skribble.com",
        not_before=now - timedelta(days=10),
        not_after=now - timedelta(seconds=1),
    )

    response = success_app.resolve(
        path_delivery("SUCCESS", [SR, DOC], expired), LambdaContext()
    )

    assert response["statusCode"] == 403
    assert response_body(response)["error"] == "certificate_expired"
    assert_nothing_stored(stack)


def test_unpinned_certificate_is_rejected(settings_for, stack, skribble_chain):
    other = make_leaf(
        make_intermediate(make_root("Other"), "Other CA"), "api.skribble.com"
    )
    app = create_app(settings_for(client_cert_sha256_pins=other.sha256_fingerprint()))

    response = app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client), LambdaContext()
    )

    assert response["statusCode"] == 403
    assert response_body(response)["error"] == "certificate_pin_mismatch"
    assert_nothing_stored(stack)


def test_either_of_two_pins_is_accepted_during_rotation(
    settings_for, stack, skribble_chain
):
    old = skribble_chain.client
    new = make_leaf(
        make_intermediate(make_root("New Root"), "New CA"), "api.skribble.com"
    )
    pins = f"{old.sha256_fingerprint()},{new.sha256_fingerprint().upper()}"
    app = create_app(settings_for(client_cert_sha256_pins=pins))

    with_old = app.resolve(path_delivery("SUCCESS", [SR, DOC], old), LambdaContext())
    with_new = app.resolve(path_delivery("SUCCESS", [SR, DOC], new), LambdaContext())

    assert with_old["statusCode"] == 200
    assert with_new["statusCode"] == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_not_allowed(success_app, stack, skribble_chain, method):
    response = success_app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client, method=method),
        LambdaContext(),
    )

    assert response["statusCode"] == 405
    assert response["multiValueHeaders"]["Allow"] == ["GET, POST"]
    assert_nothing_stored(stack)


def test_oversized_body_is_rejected(settings_for, stack, skribble_chain):
    app = create_app(settings_for(max_body_bytes=1024))

    response = app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client, body=b"x" * 1025),
        LambdaContext(),
    )

    assert response["statusCode"] == 413
    assert response_body(response)["error"] == "payload_too_large"
    assert_nothing_stored(stack)


def test_malformed_id_is_answered_400_naming_the_problem(
    success_app, stack, skribble_chain
):
    response = success_app.resolve(
        path_delivery("SUCCESS", [SR, "not-a-document-id"], skribble_chain.client),
        LambdaContext(),
    )

    assert response["statusCode"] == 400
    body = response_body(response)
    assert body["error"] == "invalid_document_id"
    assert "document_id" in body["message"]
    assert "Traceback" not in response["body"]


def test_malformed_delivery_is_quarantined_once(success_app, stack, skribble_chain):
    delivery = path_delivery(
        "SUCCESS", [SR, "not-a-document-id"], skribble_chain.client
    )

    success_app.resolve(delivery, LambdaContext())
    success_app.resolve(delivery, LambdaContext())

    [quarantined] = table_items(stack)
    assert quarantined["record_type"] == "QUARANTINE"
    assert quarantined["quarantine_reason"] == "invalid_document_id"
    assert quarantined["delivery_count"] == 2
    assert "not-a-document-id" not in json.dumps(quarantined, default=str)
    assert callback_records(stack) == []
    assert published_events(stack) == []


def test_malformed_delivery_from_a_stranger_is_not_quarantined(
    success_app, stack, skribble_chain
):
    stranger = make_leaf(skribble_chain.intermediate, "attacker.example")

    response = success_app.resolve(
        path_delivery("SUCCESS", [SR, "junk"], stranger), LambdaContext()
    )

    assert response["statusCode"] == 403
    assert_nothing_stored(stack)


def test_unknown_path_is_answered_404(success_app, stack, skribble_chain):
    delivery = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)
    delivery["path"] = "/callbacks/elsewhere"

    response = success_app.resolve(delivery, LambdaContext())

    assert response["statusCode"] == 404
    assert_nothing_stored(stack)


@pytest.fixture
def token_secret_arn(moto_endpoint) -> str:
    del moto_endpoint
    secrets = boto3.client("secretsmanager")
    name = f"callback-tokens-{datetime.now(UTC).timestamp()}"
    tokens = ["old-token-0123456789abcdef", "new-token-0123456789abcdef"]
    return secrets.create_secret(Name=name, SecretString=json.dumps(tokens))["ARN"]


def test_missing_token_is_rejected(
    settings_for, stack, skribble_chain, token_secret_arn
):
    app = create_app(settings_for(callback_token_secret_arn=token_secret_arn))

    response = app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client), LambdaContext()
    )

    assert response["statusCode"] == 403
    assert response_body(response)["error"] == "token_missing"
    assert_nothing_stored(stack)


def test_wrong_token_is_rejected(settings_for, stack, skribble_chain, token_secret_arn):
    app = create_app(settings_for(callback_token_secret_arn=token_secret_arn))
    query = [("token", "wrong-token-0123456789abcdef")]

    response = app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client, query=query),
        LambdaContext(),
    )

    assert response["statusCode"] == 403
    assert response_body(response)["error"] == "token_mismatch"
    assert_nothing_stored(stack)


@pytest.mark.parametrize(
    "token", ["old-token-0123456789abcdef", "new-token-0123456789abcdef"]
)
def test_any_configured_token_is_accepted(
    settings_for, stack, skribble_chain, token_secret_arn, token
):
    app = create_app(settings_for(callback_token_secret_arn=token_secret_arn))
    query = [("token", token)]

    response = app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client, query=query),
        LambdaContext(),
    )

    assert response["statusCode"] == 200
    [record] = callback_records(stack)
    assert token not in json.dumps(record, default=str)
