"""A local certificate authority shaped like Skribble's client certificate chain.

Skribble presents a certificate for api.skribble.com issued by an AlphaSSL
intermediate under a GlobalSign root, and sends the intermediate and root
along. The local chain has the same shape under local names, plus a server
certificate for localhost and 127.0.0.1 from a separate server root, so that
the client truststore holds only what API Gateway's truststore would hold.

Files in the PKI folder (`.local/pki/` by default, which git ignores):

- `truststore.pem`: client CA bundle (both roots and both intermediates, see
  `next-client.pem`) in the PEM format that API Gateway reads from S3 for
  mutual TLS.
- `client.pem` / `client-key.pem`: the api.skribble.com certificate followed
  by the intermediate and root, as Skribble sends them, and its key.
- `intermediate.pem` / `intermediate-key.pem`: lets tests issue more clients.
- `next-client.pem` / `next-client-key.pem`: the successor certificate for
  api.skribble.com, from a second intermediate under a second root, as a
  renewal from another AlphaSSL CA would be. The truststore already contains
  both chains, as during the overlap stage of a rotation, so the simulator
  can switch to it at run time (`make rotation-rehearsal`).
- `next-intermediate.pem` / `next-intermediate-key.pem`: the successor's
  issuing CA, to issue variants of the successor (for example serverAuth only).
- `server.pem` / `server-key.pem` / `server-ca.pem`: the gateway's server
  certificate, its key, and the root that clients use to verify it.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from local.pki import Issued, make_intermediate, make_leaf, make_root, pem_bundle
from tools.truststore_check import check_bundle

CLIENT_HOST = "api.skribble.com"
SERVER_HOST = "localhost"
SERVER_IPS = ("127.0.0.1", "::1")
# Certificates that expire sooner than this are issued again on start.
RENEW_BEFORE = datetime.timedelta(days=7)


class PkiError(Exception):
    """Raised when the local PKI cannot be written or fails its checks."""


@dataclass(frozen=True)
class LocalPki:
    """Paths of the local PKI files, plus the intermediate for issuing more."""

    directory: Path
    intermediate: Issued

    @property
    def truststore(self) -> Path:
        return self.directory / "truststore.pem"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client-key.pem"

    @property
    def next_client_cert(self) -> Path:
        return self.directory / "next-client.pem"

    @property
    def next_client_key(self) -> Path:
        return self.directory / "next-client-key.pem"

    @property
    def next_intermediate_cert(self) -> Path:
        return self.directory / "next-intermediate.pem"

    @property
    def next_intermediate_key(self) -> Path:
        return self.directory / "next-intermediate-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server-key.pem"

    @property
    def server_ca(self) -> Path:
        return self.directory / "server-ca.pem"


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate file, its key file and the values that pin it."""

    cert: Path
    key: Path
    sha256: str
    public_key_sha256: str

    @classmethod
    def from_files(cls, cert: Path, key: Path) -> ClientCertificate:
        """Read the first certificate of `cert`, which is the leaf in a chain file."""
        leaf = x509.load_pem_x509_certificate(cert.read_bytes())
        spki = leaf.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        return cls(
            cert=cert,
            key=key,
            sha256=leaf.fingerprint(hashes.SHA256()).hex(),
            public_key_sha256=hashlib.sha256(spki).hexdigest(),
        )

    def describe(self) -> dict[str, str]:
        return {
            "cert": str(self.cert),
            "key": str(self.key),
            "sha256": self.sha256,
            "public_key_sha256": self.public_key_sha256,
        }


def client_certificates(pki: LocalPki) -> dict[str, ClientCertificate]:
    """Return the current and the next client certificate by name."""
    return {
        "current": ClientCertificate.from_files(pki.client_cert, pki.client_key),
        "next": ClientCertificate.from_files(pki.next_client_cert, pki.next_client_key),
    }


def ensure_pki(directory: Path) -> LocalPki:
    """Reuse the PKI in `directory`, or write a new one when any part is missing.

    Reusing it keeps curl commands and configured clients working across
    restarts of the local stack.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    existing = _load(directory)
    if existing is not None:
        return existing
    return _write(directory)


def _write(directory: Path) -> LocalPki:
    root = make_root("Local GlobalSign Root CA (test)")
    intermediate = make_intermediate(root, "Local AlphaSSL CA (test)")
    client = make_leaf(intermediate, CLIENT_HOST, client=True, server=True)
    # The successor carries clientAuth because OpenSSL, which the local
    # gateway uses for mutual TLS, rejects a client certificate without it.
    next_root = make_root("Local GlobalSign Root R46 (test)")
    next_intermediate = make_intermediate(next_root, "Local AlphaSSL CA 2025 (test)")
    next_client = make_leaf(next_intermediate, CLIENT_HOST, client=True, server=True)
    server_root = make_root("Local Server Root CA (test)")
    server = make_leaf(
        server_root, SERVER_HOST, client=False, server=True, ip_addresses=SERVER_IPS
    )

    truststore = pem_bundle(root, intermediate, next_root, next_intermediate)
    report = check_bundle(truststore, now=datetime.datetime.now(datetime.UTC))
    if not report.ok:
        problems = "; ".join(str(finding) for finding in report.errors)
        raise PkiError(f"The local truststore fails API Gateway's checks: {problems}")

    pki = LocalPki(directory=directory, intermediate=intermediate)
    pki.truststore.write_bytes(truststore)
    pki.client_cert.write_bytes(pem_bundle(client, intermediate, root))
    _write_key(client, pki.client_key)
    intermediate.write(
        directory / "intermediate.pem", directory / "intermediate-key.pem"
    )
    pki.next_client_cert.write_bytes(
        pem_bundle(next_client, next_intermediate, next_root)
    )
    _write_key(next_client, pki.next_client_key)
    next_intermediate.write(pki.next_intermediate_cert, pki.next_intermediate_key)
    server.write(pki.server_cert, pki.server_key)
    pki.server_ca.write_bytes(server_root.pem())
    return pki


def _write_key(issued: Issued, path: Path) -> None:
    path.write_bytes(issued.key_pem())
    path.chmod(0o600)


def _load(directory: Path) -> LocalPki | None:
    names = [
        "truststore.pem",
        "client.pem",
        "client-key.pem",
        "intermediate.pem",
        "intermediate-key.pem",
        "next-client.pem",
        "next-client-key.pem",
        "next-intermediate.pem",
        "next-intermediate-key.pem",
        "server.pem",
        "server-key.pem",
        "server-ca.pem",
    ]
    if not all((directory / name).is_file() for name in names):
        return None
    try:
        intermediate_cert = x509.load_pem_x509_certificate(
            (directory / "intermediate.pem").read_bytes()
        )
        key = serialization.load_pem_private_key(
            (directory / "intermediate-key.pem").read_bytes(), password=None
        )
        leaves = [
            x509.load_pem_x509_certificate((directory / name).read_bytes())
            for name in ("client.pem", "next-client.pem", "server.pem")
        ]
    except ValueError:
        return None
    renew_at = datetime.datetime.now(datetime.UTC) + RENEW_BEFORE
    if any(cert.not_valid_after_utc < renew_at for cert in leaves):
        return None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return None
    return LocalPki(
        directory=directory, intermediate=Issued(cert=intermediate_cert, key=key)
    )
