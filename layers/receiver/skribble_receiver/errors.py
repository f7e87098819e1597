"""Errors a callback delivery can end in, and the HTTP answer for each."""

from __future__ import annotations

from skribble_receiver.models import ClientCertificateInfo


class CallbackError(Exception):
    """A delivery that ends with a 4xx or 503 answer.

    `code` is a stable machine-readable reason, also used as a metric and log
    key; `message` is a sentence for the caller that names the problem.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MethodNotAllowed(CallbackError):
    """The request used a method other than GET or POST."""


class PayloadTooLarge(CallbackError):
    """The request body is larger than the configured limit."""


class ClientCertificateRejected(CallbackError):
    """The forwarded client certificate is missing or not Skribble's.

    `certificate` holds the facts of a parsed certificate that failed a check,
    so that its issuer and fingerprints can be logged for a rotation.
    """

    def __init__(
        self,
        code: str,
        message: str,
        certificate: ClientCertificateInfo | None = None,
    ) -> None:
        super().__init__(code, message)
        self.certificate = certificate


class TokenRejected(CallbackError):
    """The shared token in the URL is missing or wrong."""


class MalformedCallback(CallbackError):
    """The callback URL does not carry valid ids; the delivery is quarantined."""


class TransientFailure(CallbackError):
    """AWS was slow, throttled or failing; the caller should try again."""


class DeliveryInProgress(CallbackError):
    """Another delivery of the same callback is publishing its event now."""


# The one place that decides the HTTP status of each error.
HTTP_STATUS = {
    MethodNotAllowed: 405,
    PayloadTooLarge: 413,
    ClientCertificateRejected: 403,
    TokenRejected: 403,
    MalformedCallback: 400,
    TransientFailure: 503,
    DeliveryInProgress: 503,
}


def http_status(error: CallbackError) -> int:
    """Return the HTTP status for an error, by its most specific class."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
