"""Mutual TLS cases that only real handshakes show, against the local gateway."""

from __future__ import annotations

import datetime
import http.client
import json
import shutil
import ssl
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from local.pki import Issued, make_intermediate, make_leaf, make_root, pem_bundle
from local.resources import drain_events
from tests.support.sim_client import wait_for

pytestmark = pytest.mark.e2e


def _intermediate(local_stack: dict[str, Any]) -> Issued:
    pki = local_stack["pki"]
    cert = x509.load_pem_x509_certificate(Path(pki["intermediate_cert"]).read_bytes())
    key = serialization.load_pem_private_key(
        Path(pki["intermediate_key"]).read_bytes(), password=None
    )
    return Issued(cert=cert, key=key)  # type: ignore[arg-type]


def _client_files(directory: Path, leaf: Issued, *chain: Issued) -> tuple[Path, Path]:
    cert_path = directory / f"client-{uuid.uuid4().hex[:8]}.pem"
    key_path = cert_path.with_suffix(".key")
    cert_path.write_bytes(pem_bundle(leaf, *chain))
    key_path.write_bytes(leaf.key_pem())
    return cert_path, key_path


def _update_path(request_id: str) -> str:
    return f"/callbacks/update/{request_id}/{uuid.uuid4()}/{uuid.uuid4()}"


def _post(
    local_stack: dict[str, Any], path: str, client: tuple[Path, Path] | None
) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=local_stack["pki"]["server_ca"])
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    netloc = urlsplit(local_stack["gateway_url"]).netloc
    connection = http.client.HTTPSConnection(netloc, timeout=10, context=context)
    try:
        connection.request("POST", path, body=b"{}")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _records(local_stack: dict[str, Any], dynamodb: Any, request_id: str) -> list:
    return dynamodb.query(
        TableName=local_stack["table_name"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SR#{request_id}"}},
    )["Items"]


def _events(local_stack: dict[str, Any], sqs: Any, request_id: str) -> list:
    events = drain_events(local_stack["queue_url"], wait_seconds=1, sqs=sqs)
    return [
        event
        for event in events
        if event["detail"].get("signature_request_id") == request_id
    ]


def test_skribble_certificate_is_recorded(local_stack, dynamodb, sqs):
    request_id = str(uuid.uuid4())
    pki = local_stack["pki"]
    client = (Path(pki["client_cert"]), Path(pki["client_key"]))

    status, body = _post(local_stack, _update_path(request_id), client)

    assert status == 200
    assert body["status"] == "recorded"
    assert len(_records(local_stack, dynamodb, request_id)) == 1
    assert len(_events(local_stack, sqs, request_id)) == 1


def test_missing_client_certificate_fails_handshake(local_stack, dynamodb):
    request_id = str(uuid.uuid4())

    with pytest.raises((ssl.SSLError, ConnectionError)):
        _post(local_stack, _update_path(request_id), None)

    assert _records(local_stack, dynamodb, request_id) == []


def test_certificate_from_other_ca_fails_handshake(local_stack, dynamodb, tmp_path):
    root = make_root("Other Root CA")
    intermediate = make_intermediate(root, "Other Issuing CA")
    leaf = make_leaf(intermediate, "api.skribble.com")
    client = _client_files(tmp_path, leaf, intermediate)
    request_id = str(uuid.uuid4())

    with pytest.raises((ssl.SSLError, ConnectionError)):
        _post(local_stack, _update_path(request_id), client)

    assert _records(local_stack, dynamodb, request_id) == []


def test_same_ca_other_subject_gets_403(local_stack, dynamodb, sqs, tmp_path):
    intermediate = _intermediate(local_stack)
    leaf = make_leaf(intermediate, "attacker.example.com")
    client = _client_files(tmp_path, leaf, intermediate)
    request_id = str(uuid.uuid4())

    status, body = _post(local_stack, _update_path(request_id), client)

    assert status == 403
    assert body["error"] == "certificate_host_not_allowed"
    assert _records(local_stack, dynamodb, request_id) == []
    assert _events(local_stack, sqs, request_id) == []


def test_expired_certificate_fails_handshake(local_stack, dynamodb, tmp_path):
    intermediate = _intermediate(local_stack)
    now = datetime.datetime.now(datetime.UTC)
    leaf = make_leaf(
        intermediate,
        "api.skribble.com",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    client = _client_files(tmp_path, leaf, intermediate)
    request_id = str(uuid.uuid4())

    with pytest.raises((ssl.SSLError, ConnectionError)):
        _post(local_stack, _update_path(request_id), client)

    assert _records(local_stack, dynamodb, request_id) == []


def test_curl_with_client_certificate_is_recorded(local_stack, dynamodb, sqs):
    curl = shutil.which("curl")
    assert curl is not None, "curl is required: apt-get install curl"
    pki = local_stack["pki"]
    request_id = str(uuid.uuid4())
    url = local_stack["gateway_url"] + _update_path(request_id)

    result = subprocess.run(
        [
            curl,
            "--silent",
            "--show-error",
            "--cert",
            pki["client_cert"],
            "--key",
            pki["client_key"],
            "--cacert",
            pki["server_ca"],
            "--write-out",
            "\n%{http_code}",
            "-X",
            "POST",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    body, _, status = result.stdout.rpartition("\n")
    assert result.returncode == 0, result.stderr
    assert status == "200"
    assert json.loads(body)["status"] == "recorded"
    [record] = _records(local_stack, dynamodb, request_id)
    assert record["delivery_count"]["N"] == "1"
    assert len(_events(local_stack, sqs, request_id)) == 1


def test_failed_handshake_is_logged(local_stack, stack_log):
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _post(local_stack, _update_path(str(uuid.uuid4())), None)

    # The gateway logs after the client has seen the failure.
    wait_for(lambda: "TLS handshake failed" in stack_log.read_text(), timeout=5)
