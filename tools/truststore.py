"""Check, describe and upload the API Gateway mutual TLS truststore.

    python -m tools.truststore check BUNDLE [--min-days N] [--warn-days N]
    python -m tools.truststore describe BUNDLE
    python -m tools.truststore client BUNDLE CERT
    python -m tools.truststore upload BUNDLE --bucket B --key K

`upload` runs the same checks first and prints only the new S3 object version
on standard output, to pass as the `TruststoreVersion` parameter. Everything
else goes to standard error. The exit status is 1 when a check finds an error
or the upload fails.
"""

import argparse
import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from cryptography import x509

from tools.client_certificate import check_client_certificate
from tools.truststore_check import (
    DEFAULT_MIN_DAYS,
    DEFAULT_WARN_DAYS,
    CheckReport,
    check_bundle,
    common_name,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PEM_CONTENT_TYPE = "application/x-pem-file"


class UploadError(Exception):
    """The bundle could not be stored as a new version of the S3 object."""


def upload_bundle(client: "S3Client", data: bytes, *, bucket: str, key: str) -> str:
    """Put `data` to a versioned bucket and return the new object's VersionId."""
    try:
        versioning = client.get_bucket_versioning(Bucket=bucket)
    except ClientError as exc:
        raise UploadError(
            f"cannot read the versioning state of bucket {bucket!r}: {exc}"
        ) from exc
    status = versioning.get("Status", "never enabled")
    if status != "Enabled":
        raise UploadError(
            f"bucket {bucket!r} does not have versioning enabled (status: "
            f"{status}); TruststoreVersion needs a versioned object. Enable it "
            f"with: aws s3api put-bucket-versioning --bucket {bucket} "
            "--versioning-configuration Status=Enabled"
        )
    try:
        response = client.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=PEM_CONTENT_TYPE
        )
    except ClientError as exc:
        raise UploadError(f"upload to s3://{bucket}/{key} failed: {exc}") from exc
    version = response.get("VersionId")
    if not version or version == "null":
        raise UploadError(
            f"S3 returned no version for s3://{bucket}/{key}; check that "
            "versioning is enabled on the bucket"
        )
    return version


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    now = datetime.datetime.now(datetime.UTC)
    data = _read(args.bundle)
    report = check_bundle(
        data, now=now, min_days=args.min_days, warn_days=args.warn_days
    )
    if args.command == "describe":
        return _describe(report)
    _print_report(args.bundle, report)
    if args.command == "check":
        return 0 if report.ok else 1
    if args.command == "client":
        return _client(args.certificate, report, now)
    if not report.ok:
        print("upload skipped: the bundle failed its checks", file=sys.stderr)
        return 1
    return _upload(args, data)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.truststore",
        description="Check and upload the API Gateway mutual TLS truststore.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check a PEM bundle")
    describe = commands.add_parser(
        "describe", help="print a Markdown table of the bundle's certificates"
    )
    client = commands.add_parser(
        "client",
        help="check a client certificate against the bundle and print its pins",
    )
    upload = commands.add_parser(
        "upload", help="check a bundle, then put it to a versioned S3 bucket"
    )
    upload.add_argument("--bucket", required=True, help="S3 bucket name")
    upload.add_argument("--key", required=True, help="S3 object key")
    upload.add_argument(
        "--endpoint-url",
        default=None,
        help="S3 endpoint URL; by default boto3 uses AWS_ENDPOINT_URL or AWS",
    )
    for command in (check, describe, client, upload):
        command.add_argument("bundle", type=Path, help="PEM bundle file")
        command.add_argument(
            "--min-days",
            type=int,
            default=DEFAULT_MIN_DAYS,
            help="reject certificates that expire within this many days "
            f"(default {DEFAULT_MIN_DAYS})",
        )
        command.add_argument(
            "--warn-days",
            type=int,
            default=DEFAULT_WARN_DAYS,
            help="warn about certificates that expire within this many days "
            f"(default {DEFAULT_WARN_DAYS})",
        )
    client.add_argument(
        "certificate", type=Path, help="PEM file of the client certificate"
    )
    return parser


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"error: cannot read bundle {str(path)!r}: {exc}") from exc


def _print_report(path: Path, report: CheckReport) -> None:
    for finding in report.findings:
        print(finding, file=sys.stderr)
    print(
        f"{path}: certificates: {len(report.certificates)}, "
        f"errors: {len(report.errors)}, warnings: {len(report.warnings)}",
        file=sys.stderr,
    )


def _describe(report: CheckReport) -> int:
    print("| # | subject | issuer | not before | not after | SHA-256 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for item in report.certificates:
        cert = item.cert
        print(
            f"| {item.entry} | {cert.subject.rfc4514_string()} "
            f"| {cert.issuer.rfc4514_string()} "
            f"| {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
            f"| {cert.not_valid_after_utc:%Y-%m-%d %H:%M} "
            f"| `{item.sha256.upper()}` |"
        )
    return 0


def _client(path: Path, report: CheckReport, now: datetime.datetime) -> int:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"error: cannot load client certificate {path}: {exc}", file=sys.stderr)
        return 1
    result = check_client_certificate(cert, report.certificates, now=now)
    print(f"subject: {result.subject}")
    print(f"issuer: {result.issuer}")
    print(f"serial: {result.serial}")
    print(f"not after: {result.not_after:%Y-%m-%d %H:%M} UTC")
    print(f"DNS names: {', '.join(result.dns_names) or '(none)'}")
    print(f"extended key usage: {', '.join(result.extended_key_usage) or '(none)'}")
    print(f"chain in bundle: {' -> '.join(result.chain) or '(none)'}")
    print(f"ClientCertSha256Pins entry: {result.cert_sha256}")
    print(f"ClientPublicKeySha256Pins entry: {result.public_key_sha256}")
    for severity, message in result.findings:
        print(f"{severity}: '{common_name(cert)}': {message}", file=sys.stderr)
    return 0 if result.ok else 1


def _upload(args: argparse.Namespace, data: bytes) -> int:
    try:
        client = boto3.client("s3", endpoint_url=args.endpoint_url)
        version = upload_bundle(client, data, bucket=args.bucket, key=args.key)
    except UploadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"error: upload to S3 failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"uploaded s3://{args.bucket}/{args.key}; pass this version as "
        "TruststoreVersion:",
        file=sys.stderr,
    )
    print(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
