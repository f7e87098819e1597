"""Configuration of the audit function, read once from its environment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skribble_receiver.config import ConfigurationError, read_settings
from skribble_receiver.skribble_api import Credentials

# Each setting and the environment variable it comes from. template.yaml sets
# all of them, so a missing one is a deployment error, not a default.
ENVIRONMENT_VARIABLES = {
    "table_name": "TABLE_NAME",
    "event_bus_name": "EVENT_BUS_NAME",
    "event_source": "EVENT_SOURCE",
    "record_retention_days": "RECORD_RETENTION_DAYS",
    "skribble_api_base_url": "SKRIBBLE_API_BASE_URL",
    "credentials_secret_arn": "SKRIBBLE_CREDENTIALS_SECRET_ARN",
    "lookback_hours": "AUDIT_LOOKBACK_HOURS",
    "unpublished_grace_seconds": "AUDIT_UNPUBLISHED_GRACE_SECONDS",
    "degraded_attempts": "AUDIT_DEGRADED_ATTEMPTS",
    "max_concurrency": "AUDIT_MAX_CONCURRENCY",
    "stop_before_timeout_seconds": "AUDIT_STOP_BEFORE_TIMEOUT_SECONDS",
    "max_list_pages": "AUDIT_MAX_LIST_PAGES",
    "api_timeout_seconds": "SKRIBBLE_API_TIMEOUT_SECONDS",
}


class AuditSettings(BaseModel):
    """Settings of the audit function, with time spans in the unit their name gives."""

    model_config = ConfigDict(frozen=True)

    table_name: Annotated[str, Field(min_length=3, max_length=255)]
    event_bus_name: Annotated[str, Field(min_length=1, max_length=256)]
    event_source: Annotated[str, Field(min_length=1, max_length=256)]
    record_retention_days: Annotated[int, Field(ge=1, le=36500)]
    skribble_api_base_url: str
    credentials_secret_arn: Annotated[str, Field(min_length=1)]
    # Skribble gives up on a callback two hours after it fired, so the window
    # must cover more than that to see the callback once it is RESIGNATED.
    lookback_hours: Annotated[int, Field(ge=3, le=168)]
    unpublished_grace_seconds: Annotated[int, Field(ge=30, le=86400)]
    degraded_attempts: Annotated[int, Field(ge=1, le=100)]
    max_concurrency: Annotated[int, Field(ge=1, le=32)]
    stop_before_timeout_seconds: Annotated[int, Field(ge=5, le=600)]
    max_list_pages: Annotated[int, Field(ge=0, le=1000)]
    api_timeout_seconds: Annotated[float, Field(gt=0, le=60)]

    @field_validator("skribble_api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError(
                f"{value!r} is not an http(s) URL: expected for example "
                "https://api.skribble.com/v2"
            )
        return value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AuditSettings:
        """Read and validate the settings, naming each bad variable."""
        return read_settings(cls, ENVIRONMENT_VARIABLES, environ, runner="audit")


# Secrets Manager is asked again after this many seconds, so that a rotated
# API key is picked up by warm containers.
CREDENTIALS_MAX_AGE_SECONDS = 300


def credentials_from_secret(value: Any, secret_arn: str) -> Credentials:
    """Build Credentials from the secret's JSON `{"username", "api_key"}`."""
    document = value
    if isinstance(value, str | bytes):
        try:
            document = json.loads(value)
        except ValueError as exc:
            raise ConfigurationError(
                f"Secret {secret_arn} is not JSON: store "
                '{"username": "...", "api_key": "..."}.'
            ) from exc
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"Secret {secret_arn} is not a JSON object: store "
            '{"username": "...", "api_key": "..."}.'
        )
    username = document.get("username")
    api_key = document.get("api_key")
    if not isinstance(username, str) or not username:
        raise ConfigurationError(f"Secret {secret_arn} lacks a 'username' string.")
    if not isinstance(api_key, str) or not api_key:
        raise ConfigurationError(f"Secret {secret_arn} lacks an 'api_key' string.")
    return Credentials(username=username, api_key=api_key)


def load_credentials(secret_arn: str) -> Credentials:
    """Read the Skribble API credentials from Secrets Manager, cached briefly.

    Powertools' parameter cache keeps the value for the container, so most
    calls cost no request.
    """
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, max_age=CREDENTIALS_MAX_AGE_SECONDS)
    return credentials_from_secret(value, secret_arn)
