"""The client certificate the simulator presents, switchable at run time.

Skribble switches its client certificate on a date it announces. The local
rotation rehearsal does the same through `POST /_sim/client-certificate`. Each
callback POST takes one snapshot of the selection when it opens its
connection, so a switch never changes the certificate of a call in flight:
that call finishes with the certificate it started with.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .config import SimulatorConfig

# Name of the certificate given by --client-cert, or by file paths in a switch.
CONFIGURED = "configured"


@dataclass(frozen=True)
class PresentedCertificate:
    """The TLS context for callback POSTs and the certificate it presents."""

    name: str | None
    cert: Path | None
    key: Path | None
    sha256: str | None
    context: ssl.SSLContext

    def describe(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "cert": None if self.cert is None else str(self.cert),
            "key": None if self.key is None else str(self.key),
            "sha256": self.sha256,
        }


class ClientCertificates:
    """The named client certificates and the one that callback POSTs present."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._ca_bundle = config.ca_bundle
        self._named = dict(config.named_client_certificates)
        self._lock = threading.Lock()
        name = CONFIGURED if config.client_cert is not None else None
        self._current = self._load(name, config.client_cert, config.client_key)

    @property
    def names(self) -> list[str]:
        return sorted(self._named)

    def current(self) -> PresentedCertificate:
        """Return the selection; the result stays valid after a switch."""
        with self._lock:
            return self._current

    def select_named(self, name: str) -> PresentedCertificate:
        """Present the certificate configured under `name` from now on."""
        try:
            cert, key = self._named[name]
        except KeyError:
            known = ", ".join(self.names) or "none configured"
            raise ValueError(
                f"unknown client certificate {name!r}: use one of {known}, "
                "or give 'cert' and 'key' file paths"
            ) from None
        return self._select(name, cert, key)

    def select_files(self, cert: Path, key: Path) -> PresentedCertificate:
        """Present the certificate chain in `cert` with the private key `key`."""
        return self._select(CONFIGURED, cert, key)

    def _select(self, name: str, cert: Path, key: Path) -> PresentedCertificate:
        # Load outside the lock: a bad file leaves the selection unchanged.
        loaded = self._load(name, cert, key)
        with self._lock:
            self._current = loaded
        return loaded

    def _load(
        self, name: str | None, cert: Path | None, key: Path | None
    ) -> PresentedCertificate:
        context = ssl.create_default_context(
            cafile=str(self._ca_bundle) if self._ca_bundle else None
        )
        sha256 = None
        if cert is not None and key is not None:
            try:
                context.load_cert_chain(str(cert), str(key))
                leaf = x509.load_pem_x509_certificate(cert.read_bytes())
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise ValueError(
                    f"cannot load client certificate {cert} with key {key}: {exc}; "
                    "give a PEM certificate chain and its unencrypted PEM key"
                ) from exc
            sha256 = leaf.fingerprint(hashes.SHA256()).hex()
        return PresentedCertificate(
            name=name, cert=cert, key=key, sha256=sha256, context=context
        )
