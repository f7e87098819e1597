"""Settings of one simulator run, filled from the command line or by tests."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

CALLBACK_TYPES = ("SUCCESS", "UPDATE", "ERROR", "START_SIGN", "INITIATE", "IDENT_ERROR")
URL_FIELDS = ("callback_success_url", "callback_update_url", "callback_error_url")

# Skribble documents which URL field SUCCESS, UPDATE and ERROR use. For
# START_SIGN, INITIATE and IDENT_ERROR it does not, so these entries are an
# assumption that `--route` can change; the receiver must cope with either.
DEFAULT_ROUTES: dict[str, str | None] = {
    "SUCCESS": "callback_success_url",
    "UPDATE": "callback_update_url",
    "ERROR": "callback_error_url",
    "START_SIGN": "callback_update_url",
    "INITIATE": "callback_update_url",
    "IDENT_ERROR": "callback_error_url",
}


def parse_route(text: str) -> tuple[str, str | None]:
    """Parse `TYPE=FIELD` (or `TYPE=none` to fire nothing) into a route entry."""
    callback_type, sep, url_field = text.partition("=")
    callback_type = callback_type.strip().upper()
    url_field = url_field.strip()
    if not sep or callback_type not in CALLBACK_TYPES:
        raise ValueError(
            f"invalid route {text!r}: expected TYPE=FIELD with TYPE one of "
            f"{', '.join(CALLBACK_TYPES)}"
        )
    if url_field.lower() == "none":
        return callback_type, None
    if url_field not in URL_FIELDS:
        raise ValueError(
            f"invalid route {text!r}: FIELD must be one of "
            f"{', '.join(URL_FIELDS)} or none"
        )
    return callback_type, url_field


def require_loopback_host(host: str) -> str:
    """Return `host` if it is a loopback IP literal, else raise ValueError."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(
            f"invalid listen address {host!r}: use 127.0.0.1 or ::1"
        ) from exc
    if not address.is_loopback:
        raise ValueError(f"listen address {host!r} is not loopback: use 127.0.0.1")
    return host


@dataclass
class SimulatorConfig:
    """Settings of the simulator; every time span is in seconds."""

    host: str = "127.0.0.1"
    port: int = 0
    username: str = "api_demo_simulator"
    api_key: str = "simulator-demo-key"
    # Real seconds, because clients compare `exp` with their own clock.
    token_ttl: float = 20 * 60
    # Simulated seconds per real second; 600 makes 10 minutes pass in 1 s.
    time_scale: float = 1.0
    # Simulated seconds: Skribble retries every 10 minutes for 2 hours.
    retry_interval: float = 10 * 60
    retry_window: float = 2 * 60 * 60
    # Real seconds for connecting to and reading from a callback target.
    callback_timeout: float = 10.0
    max_parallel: int = 4
    duplicates: int = 1
    callback_body: str = "json"
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None
    # Client certificates that `POST /_sim/client-certificate` can switch to
    # by name: name -> (certificate chain file, key file).
    named_client_certificates: dict[str, tuple[Path, Path]] = field(
        default_factory=dict
    )
    routes: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_ROUTES))
    callbacks_get_405: bool = False

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        require_loopback_host(self.host)
        if self.time_scale <= 0:
            raise ValueError(f"time scale {self.time_scale} must be greater than 0")
        if self.retry_interval <= 0:
            raise ValueError(
                f"retry interval {self.retry_interval} must be greater than 0"
            )
        if self.max_parallel < 1:
            raise ValueError(f"max parallel {self.max_parallel} must be at least 1")
        if self.duplicates < 1:
            raise ValueError(f"duplicates {self.duplicates} must be at least 1")
        if self.callback_body not in ("json", "empty"):
            raise ValueError(
                f"callback body {self.callback_body!r} must be 'json' or 'empty'"
            )
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError(
                "client certificate and key go together: give both "
                "--client-cert and --client-key, or neither"
            )
