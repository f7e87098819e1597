"""Watch the expiry of Skribble's client certificate and of the truststore.

A daily run reads two things: the client certificate that the latest live
callback presented, kept on its record, and the truststore bundle that API
Gateway uses. It emits the days each certificate has left as metrics. Each
time a certificate crosses a threshold, it publishes one event, so that a
rotation starts in time.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skribble_receiver.aws import Deadline, aws_call
from skribble_receiver.config import read_settings
from skribble_receiver.events import EventPublisher

# Days before expiry at which a warning event is published, largest first.
THRESHOLDS_DAYS = (30, 7)
EXPIRY_WARNING_DETAIL_TYPE = "Skribble Certificate Expiry Warning"
CertificateKind = Literal["client", "truststore"]

ENVIRONMENT_VARIABLES = {
    "table_name": "TABLE_NAME",
    "event_bus_name": "EVENT_BUS_NAME",
    "event_source": "EVENT_SOURCE",
    "truststore_uri": "TRUSTSTORE_URI",
    "truststore_version": "TRUSTSTORE_VERSION",
    "client_lookback_hours": "CLIENT_CERT_LOOKBACK_HOURS",
}


class ExpirySettings(BaseModel):
    """Settings of the certificate expiry check."""

    model_config = ConfigDict(frozen=True)

    table_name: Annotated[str, Field(min_length=3, max_length=255)]
    event_bus_name: Annotated[str, Field(min_length=1, max_length=256)]
    event_source: Annotated[str, Field(min_length=1, max_length=256)]
    truststore_uri: str
    truststore_version: str | None = None
    client_lookback_hours: Annotated[int, Field(ge=1, le=24 * 31)]

    @field_validator("truststore_uri")
    @classmethod
    def _check_uri(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
            raise ValueError(f"{value!r} is not an s3://bucket/key URI")
        return value

    @field_validator("truststore_version", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ExpirySettings:
        """Read and validate the settings, naming each bad variable."""
        return read_settings(cls, ENVIRONMENT_VARIABLES, environ, runner="check")


@dataclass(frozen=True)
class CertificateExpiry:
    """One certificate whose expiry is watched."""

    kind: CertificateKind
    subject: str
    issuer: str
    sha256: str
    not_after: datetime

    def days_left(self, now: datetime) -> int:
        """Return whole days until expiry, negative once expired."""
        return math.floor((self.not_after - now) / timedelta(days=1))


class ExpiryWarning(BaseModel):
    """Detail of the event published when a certificate crosses a threshold."""

    model_config = ConfigDict(frozen=True)

    kind: CertificateKind
    subject: str
    issuer: str
    sha256: str
    not_after: datetime
    days_left: int
    threshold_days: int


def threshold_crossed(days_left: int) -> int | None:
    """Return the smallest threshold at or above `days_left`, if any."""
    crossed = [threshold for threshold in THRESHOLDS_DAYS if days_left <= threshold]
    return min(crossed) if crossed else None


def truststore_certificates(bundle: bytes) -> list[CertificateExpiry]:
    """Return the certificates of a PEM truststore bundle."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return [
        CertificateExpiry(
            kind="truststore",
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            sha256=hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest(),
            not_after=certificate.not_valid_after_utc,
        )
        for certificate in x509.load_pem_x509_certificates(bundle)
    ]


class ExpiryStore:
    """Reads the latest client certificate and the notices already sent."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table_name = table_name

    def latest_client_certificate(
        self, now: datetime, lookback_hours: int
    ) -> CertificateExpiry | None:
        """Return the certificate of the newest live callback in the window.

        Walks the ActivityIndex hour by hour from now backwards, so the reads
        grow with the hours searched, not with the table.
        """
        for hours_ago in range(lookback_hours + 1):
            hour = (now - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H")
            with aws_call("query callback activity"):
                keys = self._dynamodb.query(
                    TableName=self._table_name,
                    IndexName="ActivityIndex",
                    KeyConditionExpression="activity_hour = :hour",
                    ExpressionAttributeValues={":hour": {"S": hour}},
                    Limit=20,
                )["Items"]
            for key in keys:
                certificate = self._certificate_of(key)
                if certificate is not None:
                    return certificate
        return None

    def _certificate_of(self, key: dict[str, Any]) -> CertificateExpiry | None:
        with aws_call("read client certificate"):
            item = self._dynamodb.get_item(
                TableName=self._table_name,
                Key={"pk": key["pk"], "sk": key["sk"]},
                ProjectionExpression="client_certificate",
            ).get("Item", {})
        # Records the audit recovered carry no certificate.
        fields = item.get("client_certificate", {}).get("M")
        if not fields:
            return None
        return CertificateExpiry(
            kind="client",
            subject=fields["subject_dn"]["S"],
            issuer=fields["issuer_dn"]["S"],
            sha256=fields["sha256"]["S"],
            not_after=datetime.fromisoformat(fields["not_after"]["S"]),
        )

    def claim_notice(self, certificate: CertificateExpiry, threshold: int) -> bool:
        """Record that `threshold` was announced; False if it already was.

        The condition lets exactly one run announce each threshold of a
        certificate, even when two runs overlap.
        """
        from botocore.exceptions import ClientError

        with aws_call("record expiry notice"):
            try:
                self._dynamodb.update_item(
                    TableName=self._table_name,
                    Key={
                        "pk": {"S": f"CERTIFICATE#{certificate.sha256}"},
                        "sk": {"S": "EXPIRY_NOTICE"},
                    },
                    UpdateExpression="SET notified_threshold_days = :threshold, "
                    "certificate_kind = :kind, not_after = :not_after",
                    ConditionExpression="attribute_not_exists("
                    "notified_threshold_days) OR notified_threshold_days > "
                    ":threshold",
                    ExpressionAttributeValues={
                        ":threshold": {"N": str(threshold)},
                        ":kind": {"S": certificate.kind},
                        ":not_after": {"S": certificate.not_after.isoformat()},
                    },
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def release_notice(self, certificate: CertificateExpiry) -> None:
        """Forget a claimed notice whose event could not be published."""
        with aws_call("release expiry notice"):
            self._dynamodb.delete_item(
                TableName=self._table_name,
                Key={
                    "pk": {"S": f"CERTIFICATE#{certificate.sha256}"},
                    "sk": {"S": "EXPIRY_NOTICE"},
                },
            )


def read_truststore(s3: Any, uri: str, version: str | None) -> bytes:
    """Download the truststore bundle API Gateway uses."""
    parsed = urlparse(uri)
    request: dict[str, str] = {"Bucket": parsed.netloc, "Key": parsed.path.lstrip("/")}
    if version:
        request["VersionId"] = version
    with aws_call("read truststore"):
        body: bytes = s3.get_object(**request)["Body"].read()
    return body


def check_expiry(
    certificates: list[CertificateExpiry],
    store: ExpiryStore,
    publisher: EventPublisher,
    *,
    now: datetime,
    deadline: Deadline,
) -> list[ExpiryWarning]:
    """Publish one warning per certificate and newly crossed threshold."""
    warnings = []
    for certificate in certificates:
        days_left = certificate.days_left(now)
        threshold = threshold_crossed(days_left)
        if threshold is None or not store.claim_notice(certificate, threshold):
            continue
        warning = ExpiryWarning(
            kind=certificate.kind,
            subject=certificate.subject,
            issuer=certificate.issuer,
            sha256=certificate.sha256,
            not_after=certificate.not_after,
            days_left=days_left,
            threshold_days=threshold,
        )
        try:
            publisher.publish_summary(
                EXPIRY_WARNING_DETAIL_TYPE,
                warning.model_dump_json(),
                time=now,
                deadline=deadline,
            )
        except Exception:
            store.release_notice(certificate)
            raise
        warnings.append(warning)
    return warnings
