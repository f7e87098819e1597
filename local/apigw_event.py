"""Build API Gateway REST proxy events the way API Gateway sends them.

Used by the local HTTPS gateway, the tests and the sample events in events/,
so that all three hand the functions the same shape: a REST API (payload
version 1.0) event with `requestContext.identity.clientCert` as API Gateway
fills it in for a custom domain with mutual TLS.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

# API Gateway formats certificate validity like OpenSSL: "May 28 12:30:02 2019 GMT".
_VALIDITY_FORMAT = "%b %d %H:%M:%S %Y GMT"
_REQUEST_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S +0000"


def client_cert_context(certificate: x509.Certificate) -> dict[str, Any]:
    """Return `requestContext.identity.clientCert` for a client certificate."""
    return {
        "clientCertPem": certificate.public_bytes(Encoding.PEM).decode("ascii"),
        "subjectDN": certificate.subject.rfc4514_string(),
        "issuerDN": certificate.issuer.rfc4514_string(),
        "serialNumber": _colon_hex(certificate.serial_number),
        "validity": {
            "notBefore": certificate.not_valid_before_utc.strftime(_VALIDITY_FORMAT),
            "notAfter": certificate.not_valid_after_utc.strftime(_VALIDITY_FORMAT),
        },
    }


def _colon_hex(number: int) -> str:
    digits = format(number, "x")
    if len(digits) % 2:
        digits = "0" + digits
    return ":".join(digits[index : index + 2] for index in range(0, len(digits), 2))


def rest_proxy_event(
    *,
    method: str,
    path: str,
    resource: str,
    path_parameters: Mapping[str, str] | None = None,
    query: Sequence[tuple[str, str]] = (),
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    client_cert: Mapping[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
    domain_name: str = "localhost",
    stage: str = "live",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return the event API Gateway passes to a Lambda proxy integration.

    `query` and `headers` are ordered pairs, as on the wire, so repeated
    names end up in the multi-value maps as API Gateway puts them.
    """
    now = now or datetime.now(UTC)
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        multi_query.setdefault(name, []).append(value)
    multi_headers: dict[str, list[str | None]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)

    is_binary = False
    body_text: str | None = None
    if body is not None and body != b"":
        try:
            body_text = body.decode("utf-8")
        except UnicodeDecodeError:
            body_text = base64.b64encode(body).decode("ascii")
            is_binary = True

    request_id = str(uuid.uuid4())
    identity: dict[str, Any] = {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": source_ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": multi_headers.get("User-Agent", [None])[-1],
        "user": None,
        "clientCert": dict(client_cert) if client_cert else None,
    }
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        # API Gateway keeps the last value of a repeated header or parameter
        # in the single-value maps.
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {
            name: values[-1] for name, values in multi_query.items()
        }
        or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id[:16],
            "requestTime": now.strftime(_REQUEST_TIME_FORMAT),
            "path": path,
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": domain_name.split(".", maxsplit=1)[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": identity,
            "domainName": domain_name,
            "apiId": "local",
        },
        "body": body_text,
        "isBase64Encoded": is_binary,
    }
