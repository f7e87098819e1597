"""Configuration of a callback function, read once from its environment."""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skribble_receiver.models import CallbackType

_PIN_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9-]+)*$")

# Each setting and the environment variable it comes from. template.yaml sets
# all of them, so a missing one is a deployment error, not a default.
ENVIRONMENT_VARIABLES = {
    "callback_type": "CALLBACK_TYPE",
    "table_name": "TABLE_NAME",
    "event_bus_name": "EVENT_BUS_NAME",
    "event_source": "EVENT_SOURCE",
    "allowed_client_hosts": "ALLOWED_CLIENT_HOSTS",
    "client_cert_sha256_pins": "CLIENT_CERT_SHA256_PINS",
    "client_public_key_sha256_pins": "CLIENT_PUBLIC_KEY_SHA256_PINS",
    "callback_token_secret_arn": "CALLBACK_TOKEN_SECRET_ARN",
    "base_path": "BASE_PATH",
    "record_retention_days": "RECORD_RETENTION_DAYS",
    "max_body_bytes": "MAX_BODY_BYTES",
    "retry_after_seconds": "RETRY_AFTER_SECONDS",
    "response_deadline_ms": "RESPONSE_DEADLINE_MS",
}

# Variables that may be set to an empty string to switch a feature off.
_OPTIONAL = {
    "CLIENT_CERT_SHA256_PINS",
    "CLIENT_PUBLIC_KEY_SHA256_PINS",
    "CALLBACK_TOKEN_SECRET_ARN",
    "BASE_PATH",
}


class ConfigurationError(Exception):
    """Raised when the function's environment is missing or invalid."""


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def normalize_pin(pin: str) -> str:
    """Return a SHA-256 pin as 64 lowercase hex digits, without colons."""
    return pin.replace(":", "").strip().lower()


class CallbackSettings(BaseModel):
    """Settings of one callback function."""

    model_config = ConfigDict(frozen=True)

    callback_type: CallbackType
    table_name: Annotated[str, Field(min_length=3, max_length=255)]
    event_bus_name: Annotated[str, Field(min_length=1, max_length=256)]
    event_source: Annotated[str, Field(min_length=1, max_length=256)]
    allowed_client_hosts: Annotated[tuple[str, ...], Field(min_length=1)]
    client_cert_sha256_pins: frozenset[str] = frozenset()
    client_public_key_sha256_pins: frozenset[str] = frozenset()
    callback_token_secret_arn: str | None = None
    base_path: str | None = None
    record_retention_days: Annotated[int, Field(ge=1, le=36500)]
    max_body_bytes: Annotated[int, Field(ge=1, le=10 * 1024 * 1024)]
    retry_after_seconds: Annotated[int, Field(ge=1, le=3600)]
    response_deadline_ms: Annotated[int, Field(ge=500, le=29000)]

    @field_validator("allowed_client_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        hosts = _split_list(value)
        if isinstance(hosts, tuple):
            hosts = tuple(host.lower().rstrip(".") for host in hosts)
            for host in hosts:
                if not _HOST_PATTERN.fullmatch(host):
                    raise ValueError(f"{host!r} is not a DNS host name")
        return hosts

    @field_validator(
        "client_cert_sha256_pins", "client_public_key_sha256_pins", mode="before"
    )
    @classmethod
    def _parse_pins(cls, value: object) -> object:
        pins = _split_list(value)
        if isinstance(pins, tuple):
            normalized = frozenset(normalize_pin(pin) for pin in pins)
            for pin in normalized:
                if not _PIN_PATTERN.fullmatch(pin):
                    raise ValueError(
                        f"{pin!r} is not a SHA-256 fingerprint: expected 64 hex "
                        "digits, with or without colons"
                    )
            return normalized
        return pins

    @field_validator("callback_token_secret_arn", "base_path", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def route_segment(self) -> str:
        """Return the URL path segment of this function's callback type."""
        return self.callback_type.value.lower().replace("_", "-")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> CallbackSettings:
        """Read and validate the settings, naming each bad variable."""
        return read_settings(
            cls, ENVIRONMENT_VARIABLES, environ, optional=_OPTIONAL, runner="handler"
        )


def read_settings[Settings: BaseModel](
    model: type[Settings],
    variables: Mapping[str, str],
    environ: Mapping[str, str] | None,
    *,
    optional: Collection[str] = (),
    runner: str,
) -> Settings:
    """Validate settings from environment variables, naming each bad one.

    `variables` maps each field to its variable. Raises ConfigurationError
    listing every missing variable, or every invalid one with the reason.
    """
    environ = os.environ if environ is None else environ
    missing = [
        name
        for name in variables.values()
        if name not in environ and name not in optional
    ]
    if missing:
        raise ConfigurationError(
            "Missing environment variables: "
            + ", ".join(missing)
            + f". template.yaml sets them; set them when running the {runner} "
            "outside SAM."
        )
    values = {
        field: environ[name] for field, name in variables.items() if name in environ
    }
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{variables[str(error['loc'][0])]}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"Invalid environment: {problems}") from exc
