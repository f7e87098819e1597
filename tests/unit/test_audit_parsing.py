"""Callback URLs to record keys, token expiry, Retry-After and settings."""

from __future__ import annotations

import base64
import json

import pytest

from skribble_receiver.audit import key_from_url
from skribble_receiver.audit_config import AuditSettings, credentials_from_secret
from skribble_receiver.config import ConfigurationError
from skribble_receiver.models import CallbackType
from skribble_receiver.skribble_api import (
    ASSUMED_TOKEN_LIFETIME_SECONDS,
    parse_retry_after,
    problem_detail,
    token_expiry,
)

SR = "4f43614a-de50-bfe1-2df3-4c881fc7840e"
DOC = "b107da0e-db25-478a-8130-b85e6c57ae83"
SIG = "0c5e8a57-3a3f-4a8e-9d3b-2f0c1f1e6a11"


def test_key_from_path_url() -> None:
    key = key_from_url(f"https://cb.example.com/callbacks/update/{SR}/{DOC}/{SIG}")

    assert key is not None
    assert key.route_type is CallbackType.UPDATE
    assert key.signature_request_id == SR
    assert key.document_id == DOC
    assert key.signature_id == SIG


def test_key_from_url_with_literal_placeholder() -> None:
    key = key_from_url(
        f"https://cb.example.com/callbacks/update/{SR}/{DOC}/SKRIBBLE_SIGNATURE_ID"
    )

    assert key is not None
    assert key.signature_id is None


def test_key_from_html_encoded_query_url() -> None:
    url = (
        "https://cb.example.com/base/callbacks/success?signature_request_id="
        f"{SR}&amp;amp;document_id={DOC}&amp;token=secret"
    )

    key = key_from_url(url)

    assert key is not None
    assert key.route_type is CallbackType.SUCCESS
    assert key.document_id == DOC


def test_key_from_foreign_url_is_none() -> None:
    assert key_from_url(f"https://erp.example.com/skribble/done/{SR}") is None


def test_token_expiry_from_exp_claim() -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": 2000}).encode()).decode()

    assert token_expiry(f"h.{claims.rstrip('=')}.s", issued_at=1000) == 2000


def test_token_expiry_assumed_for_opaque_token() -> None:
    expiry = token_expiry("opaque", issued_at=1000)

    assert expiry == 1000 + ASSUMED_TOKEN_LIFETIME_SECONDS


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), ("Thu, 01 Jan 1970 00:00:30 GMT", 20.0), ("soon", None), (None, None)],
)
def test_retry_after_parsed(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=10.0) == expected


def test_problem_detail_reads_rfc9457_fields() -> None:
    body = json.dumps({"title": "Too Many Requests", "detail": "slow down"}).encode()

    assert problem_detail(body) == "Too Many Requests: slow down"


def test_settings_name_missing_variable() -> None:
    with pytest.raises(ConfigurationError, match="SKRIBBLE_API_BASE_URL"):
        AuditSettings.from_environ({"TABLE_NAME": "table"})


def test_settings_reject_short_lookback() -> None:
    environ = {
        "TABLE_NAME": "table",
        "EVENT_BUS_NAME": "bus",
        "EVENT_SOURCE": "skribble.callbacks",
        "RECORD_RETENTION_DAYS": "400",
        "SKRIBBLE_API_BASE_URL": "https://api.skribble.com/v2",
        "SKRIBBLE_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:x",
        "AUDIT_LOOKBACK_HOURS": "1",
        "AUDIT_UNPUBLISHED_GRACE_SECONDS": "300",
        "AUDIT_DEGRADED_ATTEMPTS": "3",
        "AUDIT_MAX_CONCURRENCY": "4",
        "AUDIT_STOP_BEFORE_TIMEOUT_SECONDS": "60",
        "AUDIT_MAX_LIST_PAGES": "20",
        "SKRIBBLE_API_TIMEOUT_SECONDS": "10",
    }

    with pytest.raises(ConfigurationError, match="AUDIT_LOOKBACK_HOURS"):
        AuditSettings.from_environ(environ)


def test_secret_without_api_key_rejected() -> None:
    with pytest.raises(ConfigurationError, match="api_key"):
        credentials_from_secret('{"username": "api_demo"}', "arn:secret")
