"""Reading a callback function's settings from its environment."""

import pytest

from skribble_receiver.config import CallbackSettings, ConfigurationError

ENVIRONMENT = {
    "CALLBACK_TYPE": "UPDATE",
    "TABLE_NAME": "callbacks",
    "EVENT_BUS_NAME": "bus",
    "EVENT_SOURCE": "skribble.callbacks",
    "ALLOWED_CLIENT_HOSTS": "api.skribble.com, API.Skribble.ch.",
    "CLIENT_CERT_SHA256_PINS": "",
    "CLIENT_PUBLIC_KEY_SHA256_PINS": "",
    "CALLBACK_TOKEN_SECRET_ARN": "",
    "BASE_PATH": "",
    "RECORD_RETENTION_DAYS": "400",
    "MAX_BODY_BYTES": "65536",
    "RETRY_AFTER_SECONDS": "60",
    "RESPONSE_DEADLINE_MS": "4000",
}


def test_complete_environment_is_read():
    settings = CallbackSettings.from_environ(ENVIRONMENT)

    assert settings.route_segment == "update"
    assert settings.allowed_client_hosts == ("api.skribble.com", "api.skribble.ch")
    assert settings.client_cert_sha256_pins == frozenset()
    assert settings.callback_token_secret_arn is None


def test_missing_variable_is_named():
    environment = dict(ENVIRONMENT)
    del environment["TABLE_NAME"]

    with pytest.raises(ConfigurationError, match="TABLE_NAME"):
        CallbackSettings.from_environ(environment)


def test_unknown_callback_type_is_named():
    with pytest.raises(ConfigurationError, match="CALLBACK_TYPE"):
        CallbackSettings.from_environ({**ENVIRONMENT, "CALLBACK_TYPE": "SIGNED"})


def test_pins_with_colons_and_capitals_are_normalized():
    pin = "AB:" * 31 + "AB"

    settings = CallbackSettings.from_environ(
        {**ENVIRONMENT, "CLIENT_CERT_SHA256_PINS": f"{pin}, "}
    )

    assert settings.client_cert_sha256_pins == frozenset({"ab" * 32})


def test_short_pin_is_rejected_with_its_variable():
    with pytest.raises(ConfigurationError, match="CLIENT_PUBLIC_KEY_SHA256_PINS"):
        CallbackSettings.from_environ(
            {**ENVIRONMENT, "CLIENT_PUBLIC_KEY_SHA256_PINS": "abcd"}
        )


def test_empty_host_list_is_rejected():
    with pytest.raises(ConfigurationError, match="ALLOWED_CLIENT_HOSTS"):
        CallbackSettings.from_environ({**ENVIRONMENT, "ALLOWED_CLIENT_HOSTS": " , "})
