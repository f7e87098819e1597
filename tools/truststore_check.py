"""Check a PEM truststore bundle before API Gateway uses it for mutual TLS.

API Gateway accepts a truststore with invalid certificates and only lists them
as warnings on the custom domain name, so clients that chain to those
certificates start failing the handshake without anyone noticing.

These checks cover what the API Gateway developer guide documents for mutual
TLS: X.509 syntax, unbroken name and key chaining, current validity, SHA-256
or stronger, RSA-2048 or stronger, ECDSA-256 or stronger, and a chain length
of at most four. They are also stricter. The bundle may contain only CA
certificates, no private keys and no duplicates, EC keys must use P-256 or
P-384, and no certificate may expire within a chosen number of days.
"""

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    NameOID,
    SignatureAlgorithmOID,
)

# The bundle passes on 2026-12-04 with these defaults: its first certificate
# to expire, GlobalSign GCC R6 AlphaSSL CA 2025, has 167 days left then.
DEFAULT_MIN_DAYS = 30
DEFAULT_WARN_DAYS = 90

MIN_RSA_BITS = 2048
SUPPORTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}

# API Gateway allows client certificate chains of at most four certificates.
# The client certificate is one of them, so a CA in the bundle may be at most
# three certificates away from its root, counting itself and the root.
MAX_CA_CHAIN_LENGTH = 3

SUPPORTED_SIGNATURES = {
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
}
SIGNATURE_NAMES = {
    **SUPPORTED_SIGNATURES,
    SignatureAlgorithmOID.RSA_WITH_MD5: "md5WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    SignatureAlgorithmOID.RSASSA_PSS: "RSASSA-PSS",
    SignatureAlgorithmOID.ED25519: "Ed25519",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "dsa-with-SHA256",
}

PEM_BLOCK = re.compile(
    rb"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\r?\n"
    rb"(?P<body>.*?)"
    rb"-----END (?P=label)-----",
    re.DOTALL,
)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem found in a bundle, tied to the PEM entry it concerns."""

    severity: Severity
    code: str
    entry: int | None
    subject: str | None
    message: str

    def __str__(self) -> str:
        where = "bundle" if self.entry is None else f"entry {self.entry}"
        if self.subject is not None:
            where = f"{where} {self.subject}"
        return f"{self.severity}: {where}: {self.message}"


@dataclass(frozen=True)
class BundleCertificate:
    """A certificate parsed from the bundle, with its 1-based PEM entry number."""

    entry: int
    cert: x509.Certificate

    @property
    def sha256(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def label(self) -> str:
        """Return the common name and a fingerprint prefix, for messages."""
        return f"'{common_name(self.cert)}' (SHA-256 {self.sha256[:16]})"

    @property
    def is_self_issued(self) -> bool:
        return self.cert.subject == self.cert.issuer


@dataclass
class CheckReport:
    """Parsed certificates and every finding, errors and warnings apart."""

    certificates: list[BundleCertificate] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(
        self,
        severity: Severity,
        code: str,
        message: str,
        item: BundleCertificate | None = None,
        entry: int | None = None,
    ) -> None:
        if item is not None:
            entry = item.entry
        subject = item.label if item is not None else None
        self.findings.append(Finding(severity, code, entry, subject, message))


def common_name(cert: x509.Certificate) -> str:
    """Return the subject CN, or the whole subject when it has no CN."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        value = names[0].value
        return value if isinstance(value, str) else value.decode()
    return cert.subject.rfc4514_string()


def check_bundle(
    data: bytes,
    *,
    now: datetime.datetime,
    min_days: int = DEFAULT_MIN_DAYS,
    warn_days: int = DEFAULT_WARN_DAYS,
) -> CheckReport:
    """Parse `data` as a PEM bundle and check every entry and every chain."""
    report = CheckReport()
    _parse_entries(data, report)
    if not report.certificates and report.ok:
        report.add(Severity.ERROR, "empty", "the bundle contains no certificates")

    unique = _check_duplicates(report)
    authorities = []
    for item in unique:
        if _check_ca(item, report):
            authorities.append(item)
        _check_validity(item, report, now=now, min_days=min_days, warn_days=warn_days)
        _check_key(item, report)
        _check_signature_algorithm(item, report)
        _check_extended_key_usage(item, report)
    _check_cross_signed(unique, report)
    # A leaf in the bundle already has its error; chain findings about it
    # would only repeat that it does not belong there.
    for item in authorities:
        _check_chain(item, unique, report)
    report.findings.sort(key=lambda finding: finding.entry or 0)
    return report


def _parse_entries(data: bytes, report: CheckReport) -> None:
    position = 0
    entry = 0
    for match in PEM_BLOCK.finditer(data):
        _check_outside_text(data[position : match.start()], data, position, report)
        position = match.end()
        entry += 1
        label = match.group("label").decode("ascii")
        if "PRIVATE KEY" in label:
            # Never echo the block: it is secret material.
            report.add(
                Severity.ERROR,
                "private-key",
                f"contains a private key ({label}); remove it from the bundle "
                "and treat the key as exposed",
                entry=entry,
            )
            continue
        if label != "CERTIFICATE":
            report.add(
                Severity.ERROR,
                "not-a-certificate",
                f"PEM block of type {label!r} is not a certificate; "
                "a truststore contains only CERTIFICATE blocks",
                entry=entry,
            )
            continue
        try:
            cert = x509.load_pem_x509_certificate(match.group(0))
        except ValueError as exc:
            report.add(
                Severity.ERROR,
                "invalid-pem",
                f"CERTIFICATE block does not parse as an X.509 certificate ({exc})",
                entry=entry,
            )
            continue
        report.certificates.append(BundleCertificate(entry=entry, cert=cert))
    _check_outside_text(data[position:], data, position, report)


def _check_outside_text(
    chunk: bytes, data: bytes, offset: int, report: CheckReport
) -> None:
    stripped = chunk.strip()
    if not stripped:
        return
    line = data.count(b"\n", 0, offset + chunk.index(stripped[:1])) + 1
    if b"-----BEGIN" in stripped:
        message = f"PEM block at line {line} has no matching END line"
    else:
        message = (
            f"text outside PEM blocks at line {line}; the bundle must contain "
            "only PEM certificates"
        )
    report.add(Severity.ERROR, "invalid-pem", message)


def _check_duplicates(report: CheckReport) -> list[BundleCertificate]:
    first_entry: dict[str, int] = {}
    unique = []
    for item in report.certificates:
        if item.sha256 in first_entry:
            report.add(
                Severity.ERROR,
                "duplicate",
                f"duplicate of entry {first_entry[item.sha256]}; remove one copy",
                item,
            )
            continue
        first_entry[item.sha256] = item.entry
        unique.append(item)
    return unique


def _check_ca(item: BundleCertificate, report: CheckReport) -> bool:
    """Report a certificate that is not a CA; return whether it is one."""
    try:
        constraints = item.cert.extensions.get_extension_for_class(
            x509.BasicConstraints
        ).value
    except x509.ExtensionNotFound:
        report.add(
            Severity.ERROR,
            "not-ca",
            "leaf certificate (no basicConstraints extension); a truststore "
            "contains only CA certificates, so add the issuing CA instead",
            item,
        )
        return False
    if not constraints.ca:
        report.add(
            Severity.ERROR,
            "not-ca",
            "leaf certificate (basicConstraints CA:FALSE); a truststore contains "
            "only CA certificates, so add the issuing CA instead",
            item,
        )
        return False
    try:
        usage = item.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    if not usage.key_cert_sign:
        report.add(
            Severity.ERROR,
            "not-ca",
            "key usage lacks keyCertSign, so this CA cannot sign certificates",
            item,
        )
        return False
    return True


def _check_validity(
    item: BundleCertificate,
    report: CheckReport,
    *,
    now: datetime.datetime,
    min_days: int,
    warn_days: int,
) -> None:
    not_before = item.cert.not_valid_before_utc
    not_after = item.cert.not_valid_after_utc
    if now < not_before:
        report.add(
            Severity.ERROR,
            "not-yet-valid",
            f"not valid before {not_before:%Y-%m-%d %H:%M} UTC",
            item,
        )
        return
    if now >= not_after:
        report.add(
            Severity.ERROR,
            "expired",
            f"expired on {not_after:%Y-%m-%d %H:%M} UTC; remove it or "
            "replace it with its successor",
            item,
        )
        return
    days_left = (not_after - now).days
    if days_left < min_days:
        report.add(
            Severity.ERROR,
            "expiring",
            f"expires on {not_after:%Y-%m-%d} UTC, in {days_left} days, which is "
            f"less than the minimum of {min_days} days (--min-days)",
            item,
        )
    elif days_left < warn_days:
        report.add(
            Severity.WARNING,
            "expiring",
            f"expires on {not_after:%Y-%m-%d} UTC, in {days_left} days",
            item,
        )


def _check_key(item: BundleCertificate, report: CheckReport) -> None:
    key = item.cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            report.add(
                Severity.ERROR,
                "weak-key",
                f"weak key: RSA {key.key_size} bits; API Gateway requires RSA "
                f"{MIN_RSA_BITS} bits or more",
                item,
            )
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in SUPPORTED_CURVES:
            report.add(
                Severity.ERROR,
                "weak-key",
                f"unsupported EC curve {key.curve.name}; use "
                f"{' or '.join(SUPPORTED_CURVES.values())}",
                item,
            )
        return
    report.add(
        Severity.ERROR,
        "weak-key",
        f"unsupported key type {type(key).__name__}; use RSA or EC "
        f"{' or '.join(SUPPORTED_CURVES.values())}",
        item,
    )


def _check_signature_algorithm(item: BundleCertificate, report: CheckReport) -> None:
    oid = item.cert.signature_algorithm_oid
    if oid in SUPPORTED_SIGNATURES:
        return
    name = SIGNATURE_NAMES.get(oid, oid.dotted_string)
    if item.is_self_issued:
        # RFC 5280 section 6.1 takes only the name and key of a trust anchor,
        # so a root's own signature is never checked during path validation.
        # GlobalSign Root CA, for example, signs itself with SHA-1.
        report.add(
            Severity.WARNING,
            "signature-algorithm",
            f"root signs itself with {name}; verifiers ignore a root's own "
            "signature, but API Gateway may list it as a truststore warning",
            item,
        )
        return
    report.add(
        Severity.ERROR,
        "signature-algorithm",
        f"unsupported signature algorithm {name}; API Gateway requires SHA-256 "
        "or stronger with RSA or ECDSA",
        item,
    )


def _check_extended_key_usage(item: BundleCertificate, report: CheckReport) -> None:
    try:
        usages = item.cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage
        ).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.CLIENT_AUTH in usages:
        return
    if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages:
        return
    report.add(
        Severity.WARNING,
        "no-client-auth",
        "CA extended key usage lacks clientAuth; verifiers that check the "
        "client purpose (OpenSSL does) reject client certificates issued "
        "under this CA",
        item,
    )


def _check_cross_signed(unique: list[BundleCertificate], report: CheckReport) -> None:
    for item in unique:
        for other in unique:
            if other is item or other.cert.subject != item.cert.subject:
                continue
            if other.cert.public_key() != item.cert.public_key():
                continue
            if item.is_self_issued:
                continue
            report.add(
                Severity.WARNING,
                "cross-signed",
                f"cross-signed: same subject and key as entry {other.entry}, "
                f"issued by '{item.cert.issuer.rfc4514_string()}'; clients "
                "then have two paths, and this one ends when its issuer expires",
                item,
            )
            break


def _check_chain(
    item: BundleCertificate,
    unique: list[BundleCertificate],
    report: CheckReport,
) -> None:
    if item.is_self_issued:
        if not signed_by(item.cert, item.cert):
            report.add(
                Severity.ERROR,
                "bad-signature",
                "self-signed signature does not verify with its own key",
                item,
            )
        return
    named_issuers = [c for c in unique if c.cert.subject == item.cert.issuer]
    if not named_issuers:
        report.add(
            Severity.ERROR,
            "missing-issuer",
            f"missing issuer: '{item.cert.issuer.rfc4514_string()}' is not in "
            "the bundle; add that CA certificate up to a self-signed root",
            item,
        )
        return
    if not any(signed_by(item.cert, c.cert) for c in named_issuers):
        report.add(
            Severity.ERROR,
            "bad-signature",
            "signature does not verify with the key of any bundle certificate "
            f"named '{item.cert.issuer.rfc4514_string()}'",
            item,
        )
        return
    paths = list(_paths_to_root([item], unique))
    if not paths:
        report.add(
            Severity.ERROR,
            "missing-issuer",
            "no chain from this certificate to a self-signed root in the bundle",
            item,
        )
        return
    shortest = min(paths, key=len)
    if len(shortest) > MAX_CA_CHAIN_LENGTH:
        names = " -> ".join(f"'{common_name(c.cert)}'" for c in shortest)
        report.add(
            Severity.ERROR,
            "chain-too-long",
            f"chain {names} has {len(shortest)} CA certificates; with the client "
            "certificate it exceeds the four API Gateway allows",
            item,
        )
    if not any(_path_length_allowed(path) for path in paths):
        report.add(
            Severity.ERROR,
            "path-length",
            "every chain to a root breaks a pathLenConstraint of an issuer",
            item,
        )


def _paths_to_root(
    path: list[BundleCertificate], unique: list[BundleCertificate]
) -> Iterator[list[BundleCertificate]]:
    """Yield every chain from path[0] to a self-signed root, without loops."""
    current = path[-1]
    if current.is_self_issued:
        yield path
        return
    for candidate in unique:
        if candidate in path or candidate.cert.subject != current.cert.issuer:
            continue
        if signed_by(current.cert, candidate.cert):
            yield from _paths_to_root([*path, candidate], unique)


def _path_length_allowed(path: list[BundleCertificate]) -> bool:
    # Certificates in `path` run from the checked CA up to the root, so the
    # issuer at index i has i CA certificates below it before the client
    # certificate. RFC 5280 pathLenConstraint caps that number.
    for index, issuer in enumerate(path):
        if index == 0:
            continue
        try:
            constraints = issuer.cert.extensions.get_extension_for_class(
                x509.BasicConstraints
            ).value
        except x509.ExtensionNotFound:
            return False
        if constraints.path_length is not None and index > constraints.path_length:
            return False
    return True


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Return whether `issuer`'s name and key verify `cert`'s signature.

    cryptography's own check rejects SHA-1 signatures outright, which would
    report a SHA-1 signed root as broken. The algorithm check reports weak
    algorithms separately, so here only the mathematics counts.
    """
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    hash_algorithm = cert.signature_hash_algorithm
    if hash_algorithm is None:
        return _verified_by_library(cert, issuer)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            padding_scheme = cert.signature_algorithm_parameters
            if not isinstance(padding_scheme, padding.PKCS1v15 | padding.PSS):
                return False
            key.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding_scheme,
                hash_algorithm,
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_algorithm)
            )
        else:
            return _verified_by_library(cert, issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _verified_by_library(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
