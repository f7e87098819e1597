"""Check that the client certificate API Gateway forwarded is Skribble's.

Mutual TLS alone does not prove the caller is Skribble: the truststore contains
public CAs, and AlphaSSL issues certificates to anyone who controls a domain.
So every request is checked again here, from the certificate's PEM rather than
from the `subjectDN` string, which a crafted subject can make misleading.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from skribble_receiver.errors import ClientCertificateRejected
from skribble_receiver.models import ClientCertificateInfo

if TYPE_CHECKING:
    from cryptography import x509

# cryptography is imported where a certificate is parsed, not here, so that
# importing the handler stays cheap; a container parses on its first request.
_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
}
_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"


class _ParsedCertificate:
    """A parsed certificate with the facts the checks need, computed once."""

    def __init__(self, certificate: x509.Certificate) -> None:
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
        )

        self.not_before = certificate.not_valid_before_utc
        self.not_after = certificate.not_valid_after_utc
        self.host_names = _host_names(certificate)
        self.info = ClientCertificateInfo(
            subject_dn=certificate.subject.rfc4514_string(),
            issuer_dn=certificate.issuer.rfc4514_string(),
            serial_number=format(certificate.serial_number, "x"),
            not_after=certificate.not_valid_after_utc,
            sha256=hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest(),
            public_key_sha256=hashlib.sha256(
                certificate.public_key().public_bytes(
                    Encoding.DER, PublicFormat.SubjectPublicKeyInfo
                )
            ).hexdigest(),
            extended_key_usages=_extended_key_usages(certificate),
            client_auth=_CLIENT_AUTH
            in (oid.dotted_string for oid in _extended_key_usage_oids(certificate)),
        )


def _extended_key_usage_oids(
    certificate: x509.Certificate,
) -> list[x509.ObjectIdentifier]:
    from cryptography import x509

    try:
        extension = certificate.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage
        )
    except x509.ExtensionNotFound:
        return []
    return list(extension.value)


def _extended_key_usages(certificate: x509.Certificate) -> tuple[str, ...]:
    return tuple(
        _EKU_NAMES.get(oid.dotted_string, oid.dotted_string)
        for oid in _extended_key_usage_oids(certificate)
    )


def _host_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """Return the DNS names, or the common name when there are none."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        extension = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except x509.ExtensionNotFound:
        # Only a certificate without a SAN extension falls back to its CN, as
        # RFC 6125 allows; a SAN without DNS names does not.
        names = [
            str(attribute.value)
            for attribute in certificate.subject.get_attributes_for_oid(
                NameOID.COMMON_NAME
            )
        ]
    else:
        names = extension.value.get_values_for_type(x509.DNSName)
    return tuple(name.lower().rstrip(".") for name in names)


@lru_cache(maxsize=16)
def _parse(pem: str) -> _ParsedCertificate:
    from cryptography import x509

    # Skribble presents the same certificate on every call, so a warm
    # container parses it once.
    return _ParsedCertificate(x509.load_pem_x509_certificate(pem.encode("ascii")))


def host_matches(certificate_name: str, allowed_host: str) -> bool:
    """Match a certificate DNS name to an allowed host, literally.

    A wildcard name such as `*.skribble.com` matches only when that exact
    wildcard is allowed: a wildcard certificate may sit on any host of the
    domain, so it is not taken as `api.skribble.com` by default.
    """
    return certificate_name == allowed_host


def check_client_certificate(
    client_cert: Mapping[str, Any] | None,
    *,
    allowed_hosts: tuple[str, ...],
    cert_pins: frozenset[str],
    public_key_pins: frozenset[str],
    now: datetime | None = None,
) -> ClientCertificateInfo:
    """Return facts about the client certificate, or reject it.

    Raises ClientCertificateRejected with a reason code when the certificate is
    missing, unparseable, outside its validity, names no allowed host or,
    when pins are configured, matches none of them.
    """
    pem = (client_cert or {}).get("clientCertPem")
    if not pem or not isinstance(pem, str):
        raise ClientCertificateRejected(
            "certificate_missing",
            "No client certificate was forwarded: call through the custom "
            "domain with mutual TLS, not the execute-api endpoint.",
        )
    try:
        parsed = _parse(pem)
    except ValueError as exc:
        raise ClientCertificateRejected(
            "certificate_unparseable",
            "The forwarded client certificate is not a PEM X.509 certificate.",
        ) from exc

    now = now or datetime.now(UTC)
    if now < parsed.not_before:
        raise ClientCertificateRejected(
            "certificate_not_yet_valid",
            "The client certificate is not valid yet.",
            parsed.info,
        )
    if now > parsed.not_after:
        raise ClientCertificateRejected(
            "certificate_expired", "The client certificate has expired.", parsed.info
        )

    if not any(
        host_matches(name, host) for name in parsed.host_names for host in allowed_hosts
    ):
        raise ClientCertificateRejected(
            "certificate_host_not_allowed",
            "The client certificate names none of the allowed hosts.",
            parsed.info,
        )

    if cert_pins or public_key_pins:
        pinned = (
            parsed.info.sha256 in cert_pins
            or parsed.info.public_key_sha256 in public_key_pins
        )
        if not pinned:
            raise ClientCertificateRejected(
                "certificate_pin_mismatch",
                "The client certificate matches none of the configured pins.",
                parsed.info,
            )

    return parsed.info
