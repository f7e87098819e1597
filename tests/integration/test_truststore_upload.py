"""Upload the truststore to a moto S3 server on 127.0.0.1 over HTTP.

boto3 finds the server through AWS_ENDPOINT_URL, the same variable a real
deployment would leave unset, so the upload code has no test-only branch.
"""

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local import pki
from tools.truststore import main

STARTUP_TIMEOUT_SECONDS = 30


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                url = f"{endpoint}/moto-api/"
                with urllib.request.urlopen(url, timeout=1):
                    break
            except OSError as exc:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(
                        f"moto server did not start on {endpoint}"
                    ) from exc
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


@pytest.fixture(scope="module")
def bundle_bytes() -> bytes:
    root = pki.make_root("Upload Root CA")
    return pki.pem_bundle(root, pki.make_intermediate(root, "Upload Issuing CA"))


def make_bucket(name: str, *, versioned: bool) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": "Enabled"}
        )


def test_upload_prints_version_of_stored_bundle(
    aws_env: str,
    bundle_bytes: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_bucket("truststore-versioned", versioned=True)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(bundle_bytes)

    status = main(
        ["upload", str(bundle), "--bucket", "truststore-versioned", "--key", "ts.pem"]
    )
    version = capsys.readouterr().out.strip()

    assert status == 0
    stored = boto3.client("s3").get_object(
        Bucket="truststore-versioned", Key="ts.pem", VersionId=version
    )
    assert stored["Body"].read() == bundle_bytes
    assert stored["ContentType"] == "application/x-pem-file"


def test_second_upload_gets_new_version(
    aws_env: str,
    bundle_bytes: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_bucket("truststore-twice", versioned=True)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(bundle_bytes)
    args = ["upload", str(bundle), "--bucket", "truststore-twice", "--key", "ts.pem"]

    main(args)
    first = capsys.readouterr().out.strip()
    main(args)
    second = capsys.readouterr().out.strip()

    assert first
    assert second
    assert first != second


def test_upload_rejects_unversioned_bucket(
    aws_env: str,
    bundle_bytes: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_bucket("truststore-plain", versioned=False)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(bundle_bytes)

    status = main(
        ["upload", str(bundle), "--bucket", "truststore-plain", "--key", "ts.pem"]
    )
    output = capsys.readouterr()

    assert status == 1
    assert output.out == ""
    assert "does not have versioning enabled" in output.err
    assert "put-bucket-versioning --bucket truststore-plain" in output.err
    listing = boto3.client("s3").list_objects_v2(Bucket="truststore-plain")
    assert listing.get("KeyCount") == 0


def test_upload_skips_bundle_that_fails_check(
    aws_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_bucket("truststore-checked", versioned=True)
    root = pki.make_root("Root With Key")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(root.pem() + root.key_pem())

    status = main(
        ["upload", str(bundle), "--bucket", "truststore-checked", "--key", "ts.pem"]
    )
    output = capsys.readouterr()

    assert status == 1
    assert "upload skipped: the bundle failed its checks" in output.err
    listing = boto3.client("s3").list_objects_v2(Bucket="truststore-checked")
    assert listing.get("KeyCount") == 0


def test_upload_reports_missing_bucket(
    aws_env: str,
    bundle_bytes: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(bundle_bytes)

    status = main(["upload", str(bundle), "--bucket", "absent", "--key", "ts.pem"])
    errors = capsys.readouterr().err

    assert status == 1
    assert "cannot read the versioning state of bucket 'absent'" in errors
    assert "NoSuchBucket" in errors
