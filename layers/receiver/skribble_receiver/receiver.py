"""The callback route: check the caller, record the callback once, publish once."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from skribble_receiver import aws
from skribble_receiver.bodies import summarize_body
from skribble_receiver.callback_url import CallbackIds, parse_callback_ids, read_token
from skribble_receiver.certificates import check_client_certificate
from skribble_receiver.config import CallbackSettings
from skribble_receiver.errors import (
    CallbackError,
    ClientCertificateRejected,
    MalformedCallback,
    MethodNotAllowed,
    PayloadTooLarge,
    http_status,
)
from skribble_receiver.events import EventPublisher
from skribble_receiver.models import (
    BodySummary,
    CallbackEventDetail,
    CallbackKey,
    CallbackType,
    ClientCertificateInfo,
    Delivery,
)
from skribble_receiver.observability import logger, metrics
from skribble_receiver.records import CallbackRecords, RecordOutcome
from skribble_receiver.tokens import TokenVerifier

ALLOWED_METHODS = ("GET", "POST")
_ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_JSON = "application/json"

# Metric names, counted per callback type (the function's route).
METRIC_RECORDED = "CallbackRecorded"
METRIC_DUPLICATE = "CallbackDuplicate"
METRIC_PUBLISHED = "EventPublished"
METRIC_DAYS_LEFT = "ClientCertificateDaysLeft"
METRIC_BY_ERROR = {
    "MethodNotAllowed": "MethodNotAllowed",
    "PayloadTooLarge": "PayloadTooLarge",
    "ClientCertificateRejected": "ClientCertificateRejected",
    "TokenRejected": "TokenRejected",
    "MalformedCallback": "CallbackMalformed",
    "TransientFailure": "TransientFailure",
    "DeliveryInProgress": "DeliveryInProgress",
}
METRIC_PUBLISH_FAILED = "PublishFailed"
METRIC_MARK_FAILED = "MarkPublishedFailed"


class CallbackReceiver:
    """Handles one callback function's deliveries.

    Built once per container: the settings are validated and the AWS clients
    are created on first use, then reused by every request.
    """

    def __init__(self, settings: CallbackSettings) -> None:
        self.settings = settings
        self._records: CallbackRecords | None = None
        self._publisher: EventPublisher | None = None
        self._tokens: TokenVerifier | None = None
        # A delivery that finds the event unpublished waits out this lease
        # before it takes over: longer than any delivery can spend publishing.
        self._publish_lease = timedelta(
            milliseconds=settings.response_deadline_ms + 5000
        )

    @property
    def records(self) -> CallbackRecords:
        if self._records is None:
            self._records = CallbackRecords(
                aws.client("dynamodb"), self.settings.table_name
            )
        return self._records

    @property
    def publisher(self) -> EventPublisher:
        if self._publisher is None:
            self._publisher = EventPublisher(
                aws.client("events"),
                bus_name=self.settings.event_bus_name,
                source=self.settings.event_source,
            )
        return self._publisher

    @property
    def tokens(self) -> TokenVerifier | None:
        arn = self.settings.callback_token_secret_arn
        if arn and self._tokens is None:
            self._tokens = TokenVerifier(arn, aws.client("secretsmanager"))
        return self._tokens

    def receive(
        self, event: APIGatewayProxyEvent, lambda_context: Any
    ) -> Response[Any]:
        """Run one delivery through its steps and return the response."""
        deadline = aws.Deadline.start(
            self.settings.response_deadline_ms, lambda_context
        )
        received_at = datetime.now(UTC)

        method = self._require_method(event)
        body = self._read_body(event)

        certificate = self._check_certificate(event, received_at)
        self._check_token(event)

        ids = self._read_ids(event, body, received_at)
        summary = summarize_body(body, event.headers.get("content-type"))
        key, callback_type, type_confirmed = self._classify(ids, summary)
        logger.append_keys(
            signature_request_id=ids.signature_request_id,
            callback_id=key.callback_id,
        )

        delivery = Delivery(
            method=method,
            id_source=ids.id_source,
            signature_id_present=ids.signature_id is not None,
            received_at=received_at,
            request_id=event.request_context.request_id or "unknown",
        )
        deadline.require("record callback")
        outcome = self.records.record_delivery(
            key,
            callback_type=callback_type,
            type_confirmed=type_confirmed,
            delivery=delivery,
            certificate=certificate,
            body=summary,
            retention_days=self.settings.record_retention_days,
            publish_lease=self._publish_lease,
        )

        if outcome.must_publish:
            self._publish(key, outcome, summary, deadline)

        return self._respond(key, outcome, certificate)

    def _require_method(self, event: APIGatewayProxyEvent) -> Any:
        method = event.http_method.upper()
        if method not in ALLOWED_METHODS:
            raise MethodNotAllowed(
                "method_not_allowed",
                f"Method {method[:16]} is not allowed: callbacks use POST or GET.",
            )
        return method

    def _read_body(self, event: APIGatewayProxyEvent) -> bytes:
        raw = event.body or ""
        # Checked on the encoded size first so that a huge body is not decoded.
        if len(raw) > self.settings.max_body_bytes * 4 // 3 + 4:
            raise self._too_large()
        try:
            body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
        except ValueError:
            body = raw.encode()
        if len(body) > self.settings.max_body_bytes:
            raise self._too_large()
        return body

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            "payload_too_large",
            f"The body is larger than {self.settings.max_body_bytes} bytes.",
        )

    def _check_certificate(
        self, event: APIGatewayProxyEvent, now: datetime
    ) -> ClientCertificateInfo:
        identity = event.raw_event.get("requestContext", {}).get("identity") or {}
        return check_client_certificate(
            identity.get("clientCert"),
            allowed_hosts=self.settings.allowed_client_hosts,
            cert_pins=self.settings.client_cert_sha256_pins,
            public_key_pins=self.settings.client_public_key_sha256_pins,
            now=now,
        )

    def _check_token(self, event: APIGatewayProxyEvent) -> None:
        verifier = self.tokens
        if verifier is not None:
            verifier.verify(read_token(event.multi_value_query_string_parameters))

    def _read_ids(
        self, event: APIGatewayProxyEvent, body: bytes, received_at: datetime
    ) -> CallbackIds:
        proxy = (event.path_parameters or {}).get("proxy") or ""
        query = event.multi_value_query_string_parameters
        try:
            return parse_callback_ids(proxy.split("/"), query)
        except MalformedCallback as error:
            # Keep the bad delivery once, so that an operator can see that
            # Skribble calls a URL the receiver cannot read.
            fingerprint = "|".join(
                (
                    self.settings.callback_type.value,
                    proxy,
                    repr(sorted((query or {}).items())),
                    hashlib.sha256(body).hexdigest(),
                )
            )
            self.records.quarantine(
                route_type=self.settings.callback_type,
                reason=error.code,
                fingerprint=fingerprint,
                received_at=received_at,
                retention_days=self.settings.record_retention_days,
                request_id=event.request_context.request_id or "unknown",
            )
            raise

    def _classify(
        self, ids: CallbackIds, body: BodySummary
    ) -> tuple[CallbackKey, CallbackType, bool]:
        """Return the record key, the callback type and whether it is certain.

        A signature request has three URL fields for six callback types, and
        Skribble does not document which field START_SIGN, INITIATE and
        IDENT_ERROR use. On the update route without a signature id and on
        the error route, several types share one URL, so the type stays
        unconfirmed until the audit settles it from Skribble's delivery log.
        When the body names a type, that type is recorded and kept in the
        key, so that two callbacks on one URL do not merge.
        """
        route = self.settings.callback_type
        key = CallbackKey(
            route_type=route,
            signature_request_id=ids.signature_request_id,
            document_id=ids.document_id,
            signature_id=ids.signature_id,
        )
        if not key.route_is_ambiguous:
            return key, route, True

        body_type = body_callback_type(body)
        if body_type is None:
            # NOTE: without a type in the body, two callbacks on one URL (two
            # signers' START_SIGN on one document, say) share this key, and
            # the second is counted as a repeat. The audit reports it.
            return key, route, False
        return key.model_copy(update={"type_in_key": body_type}), body_type, False

    def _publish(
        self,
        key: CallbackKey,
        outcome: RecordOutcome,
        body: BodySummary,
        deadline: aws.Deadline,
    ) -> None:
        detail = CallbackEventDetail(
            callback_id=key.callback_id,
            callback_type=outcome.callback_type,
            type_confirmed=outcome.type_confirmed,
            route_type=key.route_type,
            signature_request_id=key.signature_request_id,
            document_id=key.document_id,
            signature_id=key.signature_id,
            first_received_at=outcome.first_received_at,
            recovered=False,
            record_source=outcome.record_source,
            body=body,
        )
        try:
            event_id = self.publisher.publish(
                detail, time=outcome.first_received_at, deadline=deadline
            )
        except CallbackError:
            metrics.add_metric(
                name=METRIC_PUBLISH_FAILED, unit=MetricUnit.Count, value=1
            )
            raise
        metrics.add_metric(name=METRIC_PUBLISHED, unit=MetricUnit.Count, value=1)

        # The event is out, so the delivery succeeded even if marking the
        # record fails: a 503 now would make Skribble retry and a repeat would
        # publish again. The record stays PENDING with the lease, and the
        # audit publishes it once more only after its grace period.
        try:
            self.records.mark_published(key, event_id=event_id, at=datetime.now(UTC))
        except CallbackError as error:
            metrics.add_metric(name=METRIC_MARK_FAILED, unit=MetricUnit.Count, value=1)
            logger.error(
                "Event published but record not marked",
                extra={"reason": error.code, "event_id": event_id},
            )

    def _respond(
        self,
        key: CallbackKey,
        outcome: RecordOutcome,
        certificate: ClientCertificateInfo,
    ) -> Response[Any]:
        days_left = (certificate.not_after - datetime.now(UTC)).days
        metrics.add_metric(
            name=METRIC_DAYS_LEFT, unit=MetricUnit.Count, value=days_left
        )
        certificate_keys = {
            "client_cert_issuer": certificate.issuer_dn,
            "client_cert_serial": certificate.serial_number,
            "client_cert_sha256": certificate.sha256,
            "client_cert_public_key_sha256": certificate.public_key_sha256,
            "client_cert_not_after": certificate.not_after.isoformat(),
            "client_cert_extended_key_usages": list(certificate.extended_key_usages),
        }
        if not certificate.client_auth:
            logger.warning(
                "Client certificate lacks the clientAuth extended key usage",
                extra=certificate_keys,
            )

        status = "recorded" if outcome.is_new else "duplicate"
        if outcome.is_new:
            metrics.add_metric(name=METRIC_RECORDED, unit=MetricUnit.Count, value=1)
            logger.info(
                "Callback recorded",
                extra={
                    "callback_type": outcome.callback_type.value,
                    "type_confirmed": outcome.type_confirmed,
                    **certificate_keys,
                },
            )
        else:
            metrics.add_metric(name=METRIC_DUPLICATE, unit=MetricUnit.Count, value=1)
            logger.info(
                "Repeated callback delivery",
                extra={
                    "delivery_count": outcome.delivery_count,
                    "published_now": outcome.must_publish,
                    **certificate_keys,
                },
            )
        return Response(
            status_code=200,
            content_type=_JSON,
            body={"status": status, "callback_id": key.callback_id},
        )


def body_callback_type(body: BodySummary) -> CallbackType | None:
    """Return the callback type a body names in `type` or `callback_type`."""
    for name in ("callback_type", "type"):
        value = body.fields.get(name)
        if isinstance(value, str) and value.upper() in CallbackType.__members__:
            return CallbackType(value.upper())
    return None


def error_response(error: CallbackError, settings: CallbackSettings) -> Response[Any]:
    """Build the response to an error: its status and a fixed JSON body.

    Also counts the error as a metric and logs it.
    """
    status = http_status(error)
    metrics.add_metric(
        name=METRIC_BY_ERROR.get(type(error).__name__, "CallbackError"),
        unit=MetricUnit.Count,
        value=1,
    )
    log_keys: dict[str, Any] = {"reason": error.code, "status_code": status}
    if isinstance(error, ClientCertificateRejected) and error.certificate:
        # Fingerprints and issuer, never the certificate itself: enough to
        # add the pin of a rotated certificate.
        log_keys |= {
            "client_cert_issuer": error.certificate.issuer_dn,
            "client_cert_sha256": error.certificate.sha256,
            "client_cert_public_key_sha256": error.certificate.public_key_sha256,
            "client_cert_not_after": error.certificate.not_after.isoformat(),
        }
    if status >= 500:
        # The AWS error behind a 503 goes into the log; an expected outcome
        # such as a racing delivery or a spent deadline needs no traceback.
        cause = error.__cause__
        aws_failure = cause is not None and type(cause).__module__.startswith(
            ("botocore", "aws_lambda_powertools")
        )
        logger.warning(
            "Callback not completed",
            extra=log_keys,
            exc_info=error if aws_failure else None,
        )
    else:
        logger.warning("Callback rejected", extra=log_keys)

    headers: dict[str, str] = {}
    if status == 405:
        headers["Allow"] = ", ".join(ALLOWED_METHODS)
    if status == 503:
        headers["Retry-After"] = str(settings.retry_after_seconds)
    return Response(
        status_code=status,
        content_type=_JSON,
        body={"error": error.code, "message": error.message},
        headers=headers,
    )


def create_app(settings: CallbackSettings) -> APIGatewayRestResolver:
    """Build the resolver for one callback function."""
    base_path = (settings.base_path or "").strip("/")
    app = APIGatewayRestResolver(
        strip_prefixes=[f"/{base_path}"] if base_path else None
    )
    receiver = CallbackReceiver(settings)
    metrics.set_default_dimensions(CallbackType=settings.callback_type.value)
    route = f"/callbacks/{settings.route_segment}"

    # The route accepts every method so that the function, not API Gateway,
    # returns 405 for anything but GET and POST.
    @app.route(rf"{route}(?:/.*)?", method=_ANY_METHOD)
    def receive_callback() -> Response[Any]:
        return receiver.receive(app.current_event, app.lambda_context)

    @app.exception_handler(CallbackError)
    def respond_to_callback_error(error: CallbackError) -> Response[Any]:
        return error_response(error, settings)

    @app.not_found
    def respond_not_found(_error: NotFoundError) -> Response[Any]:
        return Response(
            status_code=404,
            content_type=_JSON,
            body={
                "error": "not_found",
                "message": f"This function receives callbacks under {route}.",
            },
        )

    @app.exception_handler(Exception)
    def respond_to_unexpected_error(error: Exception) -> Response[Any]:
        # Never a stack trace to the caller; 503 keeps Skribble retrying.
        logger.exception("Unexpected error while receiving a callback")
        metrics.add_metric(name="UnexpectedError", unit=MetricUnit.Count, value=1)
        return Response(
            status_code=503,
            content_type=_JSON,
            body={"error": "internal_error", "message": "Internal error. Retry later."},
            headers={"Retry-After": str(settings.retry_after_seconds)},
        )

    return app
