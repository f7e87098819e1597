"""The daily certificate expiry check, against moto."""

from __future__ import annotations

import importlib.util
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import jsonschema
import pytest

from local.pki import make_intermediate, make_leaf, make_root, pem_bundle
from local.resources import upload_truststore
from local.template import Template
from skribble_receiver import aws
from skribble_receiver.events import EventPublisher
from skribble_receiver.expiry import (
    ExpiryStore,
    check_expiry,
    truststore_certificates,
)
from skribble_receiver.receiver import create_app
from tests.integration.conftest import LambdaContext
from tests.support.callbacks import DOC, SR, path_delivery, published_events

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


@pytest.fixture
def expiring_bundle() -> bytes:
    """A root for ten years and an intermediate that expires in 20 days."""
    root = make_root("Expiry Test Root")
    intermediate = make_intermediate(
        root, "Expiry Test CA", not_after=NOW + timedelta(days=20, hours=1)
    )
    return pem_bundle(root, intermediate)


def run_check(stack, certificates, now):
    store = ExpiryStore(aws.client("dynamodb"), stack.table_name)
    publisher = EventPublisher(
        aws.client("events"), bus_name=stack.bus_name, source="skribble.callbacks"
    )
    return check_expiry(
        certificates, store, publisher, now=now, deadline=aws.Deadline.start(30_000)
    )


def test_certificate_within_30_days_warns_once(stack, expiring_bundle):
    certificates = truststore_certificates(expiring_bundle)

    first = run_check(stack, certificates, NOW)
    second = run_check(stack, certificates, NOW + timedelta(days=1))

    [warning] = first
    assert warning.subject == "CN=Expiry Test CA,O=Skribble Receiver Test"
    assert warning.threshold_days == 30
    assert warning.days_left == 20
    assert second == []
    [event] = published_events(stack)
    assert event["detail-type"] == "Skribble Certificate Expiry Warning"
    schema_path = ROOT / "schemas/events/skribble-certificate-expiry-warning.json"
    jsonschema.validate(event, json.loads(schema_path.read_text()))


def test_crossing_7_days_warns_again(stack, expiring_bundle):
    certificates = truststore_certificates(expiring_bundle)
    run_check(stack, certificates, NOW)

    later = run_check(stack, certificates, NOW + timedelta(days=14))

    [warning] = later
    assert warning.threshold_days == 7
    assert len(published_events(stack)) == 2


def test_distant_expiry_does_not_warn(stack):
    shipped = (ROOT / "truststore" / "skribble-truststore.pem").read_bytes()
    # The shipped bundle's first expiry is 2027-05-21.
    checked_on = datetime(2026, 12, 4, tzinfo=UTC)

    warnings = run_check(stack, truststore_certificates(shipped), checked_on)

    assert warnings == []
    assert published_events(stack) == []


def test_latest_callback_gives_client_certificate(settings_for, stack, skribble_chain):
    expiring = make_leaf(
        skribble_chain.intermediate,
        "api.skribble.com",
        not_after=NOW + timedelta(days=5, hours=1),
    )
    create_app(settings_for()).resolve(
        path_delivery("SUCCESS", [SR, DOC], expiring), LambdaContext()
    )
    published_events(stack)
    store = ExpiryStore(aws.client("dynamodb"), stack.table_name)

    client = store.latest_client_certificate(NOW, lookback_hours=2)

    assert client is not None
    assert client.sha256 == expiring.sha256_fingerprint()
    assert client.days_left(NOW) == 5
    [warning] = run_check(stack, [client], NOW)
    assert warning.kind == "client"
    assert warning.threshold_days == 7


def test_no_recent_callback_gives_no_client_certificate(stack):
    store = ExpiryStore(aws.client("dynamodb"), stack.table_name)

    assert store.latest_client_certificate(NOW, lookback_hours=3) is None


def test_handler_emits_days_left(stack, expiring_bundle, capsys):
    uri, version = upload_truststore(expiring_bundle, bucket=f"ts-{stack.table_name}")
    template = Template(
        parameters={"TruststoreUri": uri, "TruststoreVersion": version},
        resource_names=stack.as_resource_names(),
    )
    [spec] = [
        item
        for item in template.functions()
        if item.logical_id == "CertificateExpiryFunction"
    ]
    path = ROOT / spec.code_uri / "app.py"
    module_spec = importlib.util.spec_from_file_location("expiry_handler", path)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    with mock.patch.dict(os.environ, spec.environment):
        module_spec.loader.exec_module(module)
        result = module.lambda_handler({}, LambdaContext(remaining_ms=60_000))

    assert result["truststore_min_days_left"] == 20
    assert result["client_days_left"] is None
    assert [item["threshold_days"] for item in result["warnings"]] == [30]
    metrics = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"_aws"' in line
    ]
    assert any(
        item.get("TruststoreCertificateMinDaysLeft") == [20.0] for item in metrics
    )
