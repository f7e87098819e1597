"""Generate test certificate authorities, intermediates and leaf certificates.

The local stack uses these to stand in for Skribble's client certificate chain
and for a server certificate, and the tests use them to build truststores for
each stage of a certificate rotation. Nothing here is meant for production
keys: private keys are unencrypted and written as plain PEM files.
"""

import datetime
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

type PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
type SignatureHash = hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512

# Backdate certificates a little so that a verifier whose clock runs slightly
# behind still accepts them as valid.
CLOCK_SKEW = datetime.timedelta(minutes=5)
DEFAULT_CA_LIFETIME = datetime.timedelta(days=3650)
DEFAULT_LEAF_LIFETIME = datetime.timedelta(days=365)

EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}


@dataclass(frozen=True)
class Issued:
    """A certificate together with the private key of its subject."""

    cert: x509.Certificate
    key: PrivateKey

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sha256_fingerprint(self) -> str:
        """Return the SHA-256 of the DER certificate as lowercase hex."""
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def public_key_sha256(self) -> str:
        """Return the SHA-256 of the DER SubjectPublicKeyInfo as lowercase hex."""
        spki = self.cert.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        return hashlib.sha256(spki).hexdigest()

    def write(self, cert_path: Path, key_path: Path | None = None) -> None:
        """Write the certificate, and the key if `key_path` is given, as PEM."""
        cert_path.write_bytes(self.pem())
        if key_path is not None:
            key_path.write_bytes(self.key_pem())
            key_path.chmod(0o600)


def make_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """Generate an RSA key; 1024 bits is allowed so tests can build weak keys."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_ec_key(curve: str = "P-256") -> ec.EllipticCurvePrivateKey:
    """Generate an EC key on a NIST curve named "P-256", "P-384" or "P-521"."""
    try:
        curve_class = EC_CURVES[curve]
    except KeyError:
        raise ValueError(
            f"unsupported curve {curve!r}; use one of {', '.join(EC_CURVES)}"
        ) from None
    return ec.generate_private_key(curve_class())


def make_root(
    name: str,
    *,
    key: PrivateKey | None = None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    signature_hash: SignatureHash | None = None,
) -> Issued:
    """Create a self-signed root CA certificate with common name `name`."""
    key = key if key is not None else make_rsa_key()
    subject = _name(name)
    builder = _ca_builder(
        subject=subject,
        issuer_name=subject,
        public_key=key.public_key(),
        issuer_public_key=key.public_key(),
        not_before=not_before,
        not_after=not_after,
        path_length=None,
    )
    return Issued(cert=_sign(builder, key, signature_hash), key=key)


def make_intermediate(
    issuer: Issued,
    name: str,
    *,
    key: PrivateKey | None = None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    path_length: int | None = 0,
    extended_key_usage: list[x509.ObjectIdentifier] | None = None,
    signature_hash: SignatureHash | None = None,
) -> Issued:
    """Create an intermediate CA certificate signed by `issuer`.

    `extended_key_usage` adds an EKU extension to the CA certificate, as public
    issuing CAs do (for example serverAuth only); None leaves it out.
    """
    key = key if key is not None else make_rsa_key()
    builder = _ca_builder(
        subject=_name(name),
        issuer_name=issuer.cert.subject,
        public_key=key.public_key(),
        issuer_public_key=issuer.key.public_key(),
        not_before=not_before,
        not_after=not_after,
        path_length=path_length,
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(extended_key_usage), critical=False
        )
    return Issued(cert=_sign(builder, issuer.key, signature_hash), key=key)


def make_cross_signed(subject: Issued, issuer: Issued) -> x509.Certificate:
    """Re-issue the CA `subject` (same name and key) under `issuer`."""
    builder = _ca_builder(
        subject=subject.cert.subject,
        issuer_name=issuer.cert.subject,
        public_key=subject.key.public_key(),
        issuer_public_key=issuer.key.public_key(),
        not_before=None,
        not_after=None,
        path_length=None,
    )
    return _sign(builder, issuer.key, None)


def make_leaf(
    issuer: Issued,
    host: str,
    *,
    client: bool = True,
    server: bool = False,
    key: PrivateKey | None = None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    signature_hash: SignatureHash | None = None,
    ip_addresses: Sequence[str] = (),
) -> Issued:
    """Create an end-entity certificate for DNS name `host`, signed by `issuer`.

    `client` and `server` choose the clientAuth and serverAuth extended key
    usages. With both False the certificate carries no EKU extension at all.
    `ip_addresses` adds IP address SANs, for a server reached as 127.0.0.1.
    """
    key = key if key is not None else make_rsa_key()
    now = _now()
    not_before = not_before if not_before is not None else now - CLOCK_SKEW
    not_after = not_after if not_after is not None else now + DEFAULT_LEAF_LIFETIME
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(host),
                    *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses),
                ]
            ),
            False,
        )
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            False,
        )
    )
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), False)
    return Issued(cert=_sign(builder, issuer.key, signature_hash), key=key)


def pem_bundle(*certs: x509.Certificate | Issued) -> bytes:
    """Concatenate certificates into one PEM bundle, in the order given."""
    parts = []
    for item in certs:
        cert = item.cert if isinstance(item, Issued) else item
        parts.append(cert.public_bytes(serialization.Encoding.PEM))
    return b"".join(parts)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Skribble Receiver Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_builder(
    *,
    subject: x509.Name,
    issuer_name: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    issuer_public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    not_before: datetime.datetime | None,
    not_after: datetime.datetime | None,
    path_length: int | None,
) -> x509.CertificateBuilder:
    now = _now()
    not_before = not_before if not_before is not None else now - CLOCK_SKEW
    not_after = not_after if not_after is not None else now + DEFAULT_CA_LIFETIME
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
            False,
        )
    )


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    # RSA TLS keys also allow key encipherment for RSA key exchange; EC keys
    # only sign.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _sign(
    builder: x509.CertificateBuilder,
    key: PrivateKey,
    signature_hash: SignatureHash | None,
) -> x509.Certificate:
    algorithm = signature_hash if signature_hash is not None else hashes.SHA256()
    return builder.sign(key, algorithm)
