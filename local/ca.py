"""A local certificate authority shaped like Skribble's client certificate chain.

Skribble presents a certificate for api.skribble.com issued by an AlphaSSL
intermediate under a GlobalSign root, and sends the intermediate and root
along. The local chain has the same shape under local names, plus a server
certificate for localhost and 127.0.0.1 from a separate server root, so that
the client truststore holds only what API Gateway's truststore would hold.

Files in the PKI folder (`.local/pki/` by default, which git ignores):

- `truststore.pem`: client CA bundle (root, intermediate) in the PEM format
  that API Gateway reads from S3 for mutual TLS.
- `client.pem` / `client-key.pem`: the api.skribble.com certificate followed
  by the intermediate and root, as Skribble sends them, and its key.
- `intermediate.pem` / `intermediate-key.pem`: lets tests issue more clients.
- `server.pem` / `server-key.pem` / `server-ca.pem`: the gateway's server
  certificate, its key, and the root that clients use to verify it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
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
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server-key.pem"

    @property
    def server_ca(self) -> Path:
        return self.directory / "server-ca.pem"


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
    server_root = make_root("Local Server Root CA (test)")
    server = make_leaf(
        server_root, SERVER_HOST, client=False, server=True, ip_addresses=SERVER_IPS
    )

    truststore = pem_bundle(root, intermediate)
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
            for name in ("client.pem", "server.pem")
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
