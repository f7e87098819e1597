"""Lambda handler of the daily certificate expiry check.

Emits the days left for Skribble's client certificate (as the latest live
callback presented it) and for each truststore certificate, and publishes a
warning event when one crosses 30 or 7 days.
"""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from skribble_receiver import aws
from skribble_receiver.events import EventPublisher
from skribble_receiver.expiry import (
    CertificateExpiry,
    ExpirySettings,
    ExpiryStore,
    check_expiry,
    read_truststore,
    truststore_certificates,
)
from skribble_receiver.observability import capture_lambda_handler, logger, metrics

settings = ExpirySettings.from_environ()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    deadline = aws.Deadline.start(30_000, context)
    store = ExpiryStore(aws.client("dynamodb"), settings.table_name)

    client = store.latest_client_certificate(now, settings.client_lookback_hours)
    bundle = read_truststore(
        aws.client("s3"), settings.truststore_uri, settings.truststore_version
    )
    truststore = truststore_certificates(bundle)

    emit_days_left(client, truststore, now)

    publisher = EventPublisher(
        aws.client("events"),
        bus_name=settings.event_bus_name,
        source=settings.event_source,
    )
    certificates = ([client] if client else []) + truststore
    warnings = check_expiry(certificates, store, publisher, now=now, deadline=deadline)
    for warning in warnings:
        logger.warning(
            "Certificate expiry threshold crossed", extra=warning.model_dump()
        )

    return {
        "client_days_left": client.days_left(now) if client else None,
        "truststore_min_days_left": min(item.days_left(now) for item in truststore),
        "warnings": [warning.model_dump(mode="json") for warning in warnings],
    }


def emit_days_left(
    client: CertificateExpiry | None,
    truststore: list[CertificateExpiry],
    now: datetime,
) -> None:
    """Emit one metric per certificate and the minimum of each kind."""
    if client is None:
        # No live callback in the window: nothing to measure, and the alarm
        # treats the missing value as not breaching.
        logger.info("No client certificate seen in the lookback window")
    else:
        metrics.add_metric(
            name="ClientCertificateDaysLeft",
            unit=MetricUnit.Count,
            value=client.days_left(now),
        )
    metrics.add_metric(
        name="TruststoreCertificateMinDaysLeft",
        unit=MetricUnit.Count,
        value=min(item.days_left(now) for item in truststore),
    )
    for certificate in truststore:
        with single_metric(
            name="TruststoreCertificateDaysLeft",
            unit=MetricUnit.Count,
            value=certificate.days_left(now),
        ) as metric:
            metric.add_dimension(name="Certificate", value=certificate.sha256[:16])
