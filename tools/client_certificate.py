"""Check a client certificate against a truststore bundle and compute its pins.

Used during a rotation: when Skribble publishes or presents a new client
certificate, this shows whether the bundle contains its issuer, what extended
key usage it carries, and the SHA-256 pins to add to the template parameters.
"""

import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from tools.truststore_check import (
    BundleCertificate,
    Severity,
    common_name,
    signed_by,
)

EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


@dataclass(frozen=True)
class ClientCertificateReport:
    """Extensions, pins and bundle chain of one client certificate."""

    subject: str
    issuer: str
    serial: str
    not_after: datetime.datetime
    dns_names: list[str]
    extended_key_usage: list[str]
    cert_sha256: str
    public_key_sha256: str
    chain: list[str]
    findings: list[tuple[Severity, str]]

    @property
    def ok(self) -> bool:
        return all(severity is not Severity.ERROR for severity, _ in self.findings)


def public_key_sha256(cert: x509.Certificate) -> str:
    """Return the SHA-256 of the DER SubjectPublicKeyInfo as lowercase hex."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return hashlib.sha256(spki).hexdigest()


def check_client_certificate(
    cert: x509.Certificate,
    bundle: list[BundleCertificate],
    *,
    now: datetime.datetime,
) -> ClientCertificateReport:
    """Find `cert`'s issuer chain in `bundle` and record its EKU and pins."""
    findings: list[tuple[Severity, str]] = []
    if now >= cert.not_valid_after_utc:
        findings.append((Severity.ERROR, "the client certificate has expired"))
    elif now < cert.not_valid_before_utc:
        findings.append((Severity.ERROR, "the client certificate is not yet valid"))

    usages = _extended_key_usage(cert)
    if usages is not None and not {"clientAuth", "anyExtendedKeyUsage"} & set(usages):
        findings.append(
            (
                Severity.WARNING,
                (
                    "no clientAuth extended key usage; API Gateway may reject "
                    "the handshake (see the runbook section on a missing "
                    "clientAuth)"
                ),
            )
        )

    chain = _chain_in_bundle(cert, bundle)
    if not chain:
        findings.append(
            (
                Severity.ERROR,
                (
                    f"issuer '{cert.issuer.rfc4514_string()}' is not in the "
                    "bundle, or its signature does not verify; API Gateway "
                    "will reject this certificate"
                ),
            )
        )

    return ClientCertificateReport(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        not_after=cert.not_valid_after_utc,
        dns_names=_dns_names(cert),
        extended_key_usage=usages or [],
        cert_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        public_key_sha256=public_key_sha256(cert),
        chain=[common_name(item.cert) for item in chain],
        findings=findings,
    )


def _chain_in_bundle(
    cert: x509.Certificate, bundle: list[BundleCertificate]
) -> list[BundleCertificate]:
    chain: list[BundleCertificate] = []
    current = cert
    while True:
        issuer = next(
            (
                item
                for item in bundle
                if item not in chain
                and item.cert.subject == current.issuer
                and signed_by(current, item.cert)
            ),
            None,
        )
        if issuer is None:
            return []
        chain.append(issuer)
        if issuer.is_self_issued:
            return chain
        current = issuer.cert


def _extended_key_usage(cert: x509.Certificate) -> list[str] | None:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return [EKU_NAMES.get(oid, oid.dotted_string) for oid in usages]


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return []
    return names.get_values_for_type(x509.DNSName)
