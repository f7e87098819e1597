"""Recording callbacks once and publishing one event each, against moto."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import boto3
import jsonschema
import pytest

from skribble_receiver import aws
from skribble_receiver.models import CallbackType
from skribble_receiver.receiver import create_app
from tests.integration.conftest import LambdaContext
from tests.support.callbacks import (
    DOC,
    SIG,
    SR,
    FailedPutEvents,
    LostPutEventsResponse,
    callback_records,
    event_schema,
    path_delivery,
    published_events,
    query_delivery,
    response_body,
    table_items,
)


@pytest.fixture
def success_app(settings_for):
    return create_app(settings_for("SUCCESS"))


def test_new_callback_is_recorded(success_app, stack, skribble_chain):
    response = success_app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client), LambdaContext()
    )

    assert response["statusCode"] == 200
    assert response_body(response)["status"] == "recorded"
    [record] = callback_records(stack)
    assert record["pk"] == f"SR#{SR}"
    assert record["sk"] == f"CALLBACK#SUCCESS#{DOC}#-"
    assert record["callback_type"] == "SUCCESS"
    assert record["type_confirmed"] is True
    assert record["delivery_count"] == 1
    assert record["event_status"] == "PUBLISHED"
    assert record["first_delivery"]["id_source"] == "path"
    assert record["first_delivery"]["signature_id_present"] is False
    assert record["client_certificate"]["sha256"] == (
        skribble_chain.client.sha256_fingerprint()
    )


def test_new_callback_publishes_one_valid_event(success_app, stack, skribble_chain):
    success_app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client), LambdaContext()
    )

    [event] = published_events(stack)
    jsonschema.validate(event, event_schema(CallbackType.SUCCESS))
    assert event["detail-type"] == "Skribble Callback SUCCESS"
    assert event["detail"]["signature_request_id"] == SR
    assert event["detail"]["document_id"] == DOC
    assert event["detail"]["recovered"] is False
    [record] = callback_records(stack)
    assert record["event_id"] == event["id"]


@pytest.mark.parametrize("callback_type", [t.value for t in CallbackType])
def test_each_type_publishes_an_event_matching_its_schema(
    settings_for, stack, skribble_chain, callback_type
):
    app = create_app(settings_for(callback_type))

    app.resolve(
        path_delivery(callback_type, [SR, DOC, SIG], skribble_chain.client),
        LambdaContext(),
    )

    [event] = published_events(stack)
    jsonschema.validate(event, event_schema(CallbackType(callback_type)))


def test_body_is_summarized_without_personal_data(success_app, stack, skribble_chain):
    body = b'{"status": "SIGNED", "signer_email": "anna@example.com", "name": "Anna"}'

    success_app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client, body=body),
        LambdaContext(),
    )

    [record] = table_items(stack)
    assert record["body_summary"]["length"] == len(body)
    assert record["body_summary"]["fields"] == {"status": "SIGNED"}
    assert "anna@example.com" not in repr(record)
    [event] = published_events(stack)
    assert "anna@example.com" not in repr(event)


def test_repeated_delivery_counts_without_second_event(
    success_app, stack, skribble_chain
):
    delivery = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)
    success_app.resolve(delivery, LambdaContext())

    second = success_app.resolve(delivery, LambdaContext())
    third = success_app.resolve(delivery, LambdaContext())

    assert response_body(second)["status"] == "duplicate"
    assert response_body(third)["status"] == "duplicate"
    [record] = callback_records(stack)
    assert record["delivery_count"] == 3
    assert len(published_events(stack)) == 1


def test_get_delivery_is_recorded(success_app, stack, skribble_chain):
    delivery = path_delivery(
        "SUCCESS", [SR, DOC], skribble_chain.client, method="GET", body=None
    )

    response = success_app.resolve(delivery, LambdaContext())

    assert response["statusCode"] == 200
    [record] = callback_records(stack)
    assert record["first_delivery"]["method"] == "GET"


def test_concurrent_deliveries_record_and_publish_once(
    success_app, stack, skribble_chain
):
    delivery = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        statuses.append(success_app.resolve(delivery, LambdaContext())["statusCode"])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Deliveries racing the one that publishes get 503 and are retried.
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= 1
    [record] = callback_records(stack)
    assert record["delivery_count"] == 8
    assert record["event_status"] == "PUBLISHED"
    assert len(published_events(stack)) == 1


def test_update_without_signature_id_is_unconfirmed(
    settings_for, stack, skribble_chain
):
    app = create_app(settings_for("UPDATE"))

    app.resolve(
        path_delivery(
            "UPDATE", [SR, DOC, "SKRIBBLE_SIGNATURE_ID"], skribble_chain.client
        ),
        LambdaContext(),
    )

    [record] = callback_records(stack)
    assert record["callback_type"] == "UPDATE"
    assert record["type_confirmed"] is False
    assert record["first_delivery"]["signature_id_present"] is False
    [event] = published_events(stack)
    assert event["detail"]["type_confirmed"] is False


def test_update_with_signature_id_is_confirmed(settings_for, stack, skribble_chain):
    app = create_app(settings_for("UPDATE"))

    app.resolve(
        path_delivery("UPDATE", [SR, DOC, SIG], skribble_chain.client),
        LambdaContext(),
    )

    [record] = callback_records(stack)
    assert record["type_confirmed"] is True
    assert record["signature_id"] == SIG


def test_html_encoded_query_form_is_recorded(settings_for, stack, skribble_chain):
    app = create_app(settings_for("UPDATE"))
    query = [
        ("signature_request_id", SR),
        ("amp;document_id", DOC),
        ("amp;signature_id", SIG),
    ]

    response = app.resolve(
        query_delivery("UPDATE", query, skribble_chain.client), LambdaContext()
    )

    assert response["statusCode"] == 200
    [record] = callback_records(stack)
    assert record["sk"] == f"CALLBACK#UPDATE#{DOC}#{SIG}"
    assert record["first_delivery"]["id_source"] == "query"


def test_failed_publish_is_completed_by_next_delivery(
    success_app, stack, skribble_chain
):
    delivery = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)
    with FailedPutEvents(aws.client("events"), count=10, error_code="Throttling"):
        first = success_app.resolve(delivery, LambdaContext())
    [pending] = callback_records(stack)
    # Skribble retries ten minutes later; by then the publish lease has expired.
    expire_publish_lease(stack.table_name, pending)

    second = success_app.resolve(delivery, LambdaContext())

    assert first["statusCode"] == 503
    assert first["multiValueHeaders"]["Retry-After"] == ["60"]
    assert response_body(first)["error"] == "publish_failed"
    assert pending["event_status"] == "PENDING"
    assert second["statusCode"] == 200
    [record] = callback_records(stack)
    assert record["event_status"] == "PUBLISHED"
    assert record["delivery_count"] == 2
    assert len(published_events(stack)) == 1


def test_delivery_during_publish_lease_is_answered_503(
    success_app, stack, skribble_chain
):
    delivery = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)
    with FailedPutEvents(aws.client("events"), count=10, error_code="Throttling"):
        success_app.resolve(delivery, LambdaContext())

    second = success_app.resolve(delivery, LambdaContext())

    assert second["statusCode"] == 503
    assert response_body(second)["error"] == "delivery_in_progress"
    assert published_events(stack) == []


def test_partly_failed_put_events_is_retried(success_app, stack, skribble_chain):
    delivery = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)
    with FailedPutEvents(aws.client("events"), count=1, error_code="Internal") as fail:
        response = success_app.resolve(delivery, LambdaContext())

    assert response["statusCode"] == 200
    assert fail.remaining == 0
    [record] = callback_records(stack)
    assert record["event_status"] == "PUBLISHED"
    assert len(published_events(stack)) == 1


def expire_publish_lease(table_name: str, record: dict) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    boto3.client("dynamodb").update_item(
        TableName=table_name,
        Key={"pk": {"S": record["pk"]}, "sk": {"S": record["sk"]}},
        UpdateExpression="SET publish_lease_until = :past",
        ExpressionAttributeValues={":past": {"S": past}},
    )


def test_error_route_delivery_is_unconfirmed(settings_for, stack, skribble_chain):
    # IDENT_ERROR may use the error URL too; only the audit can tell.
    app = create_app(settings_for("ERROR"))

    app.resolve(
        path_delivery("ERROR", [SR, DOC], skribble_chain.client), LambdaContext()
    )

    [record] = callback_records(stack)
    assert record["callback_type"] == "ERROR"
    assert record["type_confirmed"] is False


def test_two_types_on_one_url_are_kept_apart(settings_for, stack, skribble_chain):
    # INITIATE and START_SIGN both arrive on the update URL before any
    # signature, so only the type in the body distinguishes them.
    app = create_app(settings_for("UPDATE"))
    ids = [SR, DOC, "SKRIBBLE_SIGNATURE_ID"]

    for body_type in ("INITIATE", "START_SIGN", "START_SIGN"):
        body = f'{{"type": "{body_type}"}}'.encode()
        app.resolve(
            path_delivery("UPDATE", ids, skribble_chain.client, body=body),
            LambdaContext(),
        )

    records = sorted(callback_records(stack), key=lambda item: item["sk"])
    assert [record["callback_type"] for record in records] == [
        "INITIATE",
        "START_SIGN",
    ]
    assert [record["delivery_count"] for record in records] == [1, 2]
    assert all(record["type_confirmed"] is False for record in records)
    events = published_events(stack)
    assert sorted(event["detail-type"] for event in events) == [
        "Skribble Callback INITIATE",
        "Skribble Callback START_SIGN",
    ]


def test_body_type_on_unambiguous_route_is_ignored(settings_for, stack, skribble_chain):
    app = create_app(settings_for("UPDATE"))
    body = b'{"type": "ERROR"}'

    app.resolve(
        path_delivery("UPDATE", [SR, DOC, SIG], skribble_chain.client, body=body),
        LambdaContext(),
    )

    [record] = callback_records(stack)
    assert record["callback_type"] == "UPDATE"
    assert record["type_confirmed"] is True


def test_failed_mark_after_publish_still_succeeds(success_app, stack, skribble_chain):
    dynamodb = aws.client("dynamodb")
    delivery = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)

    def fail_mark(params, **_kwargs):
        if ":published" in params.get("ExpressionAttributeValues", {}):
            raise dynamodb.exceptions.ProvisionedThroughputExceededException(
                {"Error": {"Code": "ProvisionedThroughputExceededException"}},
                "UpdateItem",
            )

    dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem", fail_mark
    )
    try:
        response = success_app.resolve(delivery, LambdaContext())
    finally:
        dynamodb.meta.events.unregister(
            "before-parameter-build.dynamodb.UpdateItem", fail_mark
        )

    # The event is out: a 503 would only make Skribble publish it again.
    assert response["statusCode"] == 200
    [record] = callback_records(stack)
    assert record["event_status"] == "PENDING"
    assert len(published_events(stack)) == 1


def test_lost_publish_response_is_not_retried_at_once(
    success_app, stack, skribble_chain
):
    delivery = path_delivery("SUCCESS", [SR, DOC], skribble_chain.client)
    with LostPutEventsResponse(aws.client("events")) as lost:
        first = success_app.resolve(delivery, LambdaContext())

    # The event is out, but the receiver cannot know: it returns 503 rather
    # than risk losing the callback, and sends nothing more itself.
    assert lost.fired
    assert first["statusCode"] == 503
    [published] = published_events(stack)
    [record] = callback_records(stack)
    assert record["event_status"] == "PENDING"

    # Skribble's retry after the lease publishes again: at least once, with
    # the same callback_id, which is what consumers deduplicate on.
    expire_publish_lease(stack.table_name, record)
    second = success_app.resolve(delivery, LambdaContext())

    assert second["statusCode"] == 200
    [again] = published_events(stack)
    assert again["detail"]["callback_id"] == published["detail"]["callback_id"]
    assert len(callback_records(stack)) == 1
