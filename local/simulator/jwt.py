"""HS256 JSON Web Tokens for the simulated `/access/login`.

NOTE: Skribble signs its tokens with RS256; clients must treat the token as
opaque, so the algorithm only matters inside the simulator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any


class TokenError(Exception):
    """The bearer token is missing, malformed, badly signed or expired."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issue and verify tokens with a secret that lives only in this process."""

    def __init__(self, ttl_seconds: float) -> None:
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._ttl = ttl_seconds
        # Tokens issued before this real time count as expired (fault injection).
        self._revoked_before = 0.0

    def set_ttl(self, ttl_seconds: float) -> None:
        with self._lock:
            self._ttl = ttl_seconds

    @property
    def ttl(self) -> float:
        with self._lock:
            return self._ttl

    def expire_all(self) -> None:
        """Make every token issued so far fail as expired."""
        with self._lock:
            self._revoked_before = time.time()

    def issue(self, subject: str) -> str:
        now = time.time()
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            "iss": "skribble-simulator",
            "sub": subject,
            "iat": now,
            "exp": int(now + self.ttl),
            "jti": secrets.token_hex(8),
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = hmac.new(self._secret, signing_input.encode(), hashlib.sha256)
        return signing_input + "." + _b64url(signature.digest())

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token, else raise TokenError."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("token is not a JWT: expected three dot-separated parts")
        signing_input = parts[0] + "." + parts[1]
        expected = hmac.new(self._secret, signing_input.encode(), hashlib.sha256)
        try:
            signature = _b64url_decode(parts[2])
            claims: dict[str, Any] = json.loads(_b64url_decode(parts[1]))
        except (ValueError, json.JSONDecodeError) as exc:
            raise TokenError("token is not a JWT: invalid base64url or JSON") from exc
        if not hmac.compare_digest(signature, expected.digest()):
            raise TokenError("token signature is invalid: log in again")
        now = time.time()
        with self._lock:
            revoked_before = self._revoked_before
        if now >= float(claims.get("exp", 0)) or (
            float(claims.get("iat", 0)) <= revoked_before
        ):
            raise TokenError("token has expired: log in again")
        return claims
