"""When AWS fails or is slow, the receiver answers 503 with Retry-After."""

from __future__ import annotations

import pytest

from skribble_receiver.receiver import create_app
from tests.integration.conftest import LambdaContext
from tests.support.callbacks import DOC, SR, path_delivery, response_body


def test_missing_table_is_answered_503(settings_for, skribble_chain):
    app = create_app(settings_for(table_name="no-such-table"))

    response = app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client), LambdaContext()
    )

    assert response["statusCode"] == 503
    assert response["multiValueHeaders"]["Retry-After"] == ["60"]
    assert response_body(response)["error"] == "aws_error"


def test_missing_bus_is_answered_503(settings_for, skribble_chain):
    app = create_app(settings_for(event_bus_name="no-such-bus"))

    response = app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client), LambdaContext()
    )

    assert response["statusCode"] == 503
    assert "Traceback" not in response["body"]


@pytest.mark.parametrize("remaining_ms", [100, 1500])
def test_too_little_time_left_is_answered_503(
    settings_for, skribble_chain, remaining_ms
):
    app = create_app(settings_for())

    response = app.resolve(
        path_delivery("SUCCESS", [SR, DOC], skribble_chain.client),
        LambdaContext(remaining_ms=remaining_ms),
    )

    assert response["statusCode"] == 503
    assert response_body(response)["error"] == "deadline_exceeded"
