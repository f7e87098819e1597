"""Client of the Skribble API v2 calls the audit makes.

Skribble's access token (a JWT from `POST /access/login`) lives about 20
minutes. It is cached per container and per account, so warm invocations
reuse it, and renewed shortly before it expires or when a response is 401.
Every call has a timeout; 429, 5xx, timeouts and malformed responses are retried
with exponential backoff and full jitter, and a `Retry-After` header sets the
pause instead when present.
"""

from __future__ import annotations

import base64
import email.utils
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Skribble states a token lifetime of about 20 minutes. When the token's own
# `exp` claim cannot be read, this lifetime is assumed from the login time.
ASSUMED_TOKEN_LIFETIME_SECONDS = 20 * 60
# A cached token is renewed when less than this is left of its lifetime.
TOKEN_RENEWAL_MARGIN_SECONDS = 120
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 20.0
# A `Retry-After` longer than this is not waited for: the call fails and the
# next audit run tries again.
MAX_RETRY_AFTER_SECONDS = 60.0
# Error text taken from a response body is cut to this length.
_MAX_DETAIL_CHARS = 300

Sleep = Callable[[float], None]


class SkribbleApiError(Exception):
    """A Skribble API call failed after its retries.

    `code` is a stable reason (`rate_limited`, `unauthorized`, `not_found`,
    `timeout`, `unavailable`, `malformed_response`, `http_error`,
    `deadline_exceeded`); `status` is the last HTTP status, if any.
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Credentials:
    """Skribble API user name and API key."""

    username: str
    api_key: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, api_key='***')"


class CallbackLogEntry(BaseModel):
    """One item of `GET /signature-requests/{id}/callbacks`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    signature_request_id: str | None = None
    type: str
    state: str
    url: str = ""
    attempts: int = 0
    messages: tuple[str, ...] = Field(default_factory=tuple)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SignatureRequestSummary(BaseModel):
    """The fields of a `SignatureResponse` that the audit reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    status_overall: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class _CachedToken:
    token: str
    expires_at: float  # epoch seconds


# Tokens of this container, by (base URL, user name). Module level, so that
# warm invocations of the same container reuse them.
_TOKENS: dict[tuple[str, str], _CachedToken] = {}
_TOKENS_LOCK = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached token, for example after the credentials changed."""
    with _TOKENS_LOCK:
        _TOKENS.clear()


def token_expiry(token: str, issued_at: float) -> float:
    """Return when a JWT expires, from its `exp` claim if it can be read.

    The signature is not checked: the token is only passed back to Skribble,
    and its `exp` only decides when to log in again.
    """
    parts = token.split(".")
    if len(parts) == 3:
        try:
            payload = parts[1] + "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(payload))
            exp = float(claims["exp"])
        except (ValueError, KeyError, TypeError):
            pass
        else:
            if exp > issued_at:
                return exp
    return issued_at + ASSUMED_TOKEN_LIFETIME_SECONDS


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Return the seconds a `Retry-After` header requests, or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def problem_detail(body: bytes) -> str:
    """Return the error text of a problem response, or '' when it has none.

    Skribble documents no error body; RFC 9457 fields and common
    alternatives (`message`, `error`) are read when the body is JSON.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(document, dict):
        return ""
    parts = [
        str(document[name])
        for name in ("title", "detail", "message", "error")
        if isinstance(document.get(name), str | int)
    ]
    return ": ".join(parts)[:_MAX_DETAIL_CHARS]


class SkribbleClient:
    """Calls Skribble's API v2 with a cached token, timeouts and retries.

    `deadline` is a `time.monotonic()` value after which no call or pause
    starts; the audit sets it from its time budget.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Callable[[], Credentials],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        deadline: float | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._timeout = timeout
        self._max_attempts = max_attempts
        self.deadline = deadline
        self._sleep = sleep
        # Counters for the run's log and tests: logins, retries, 405 fallbacks.
        self.logins = 0
        self.retries = 0

    # --- Operations ------------------------------------------------------

    def callbacks(self, signature_request_id: str) -> list[CallbackLogEntry]:
        """Return Skribble's delivery log of one signature request.

        Skribble's callbacks page documents GET; its OpenAPI file lists POST.
        GET is tried first, and POST when the response is 405.
        """
        path = f"/signature-requests/{quote(signature_request_id, safe='')}/callbacks"
        try:
            document = self._authenticated("GET", path)
        except SkribbleApiError as error:
            if error.status != 405:
                raise
            document = self._authenticated("POST", path, body=b"")
        if not isinstance(document, list):
            raise SkribbleApiError(
                "malformed_response",
                "The callbacks response is not a JSON array.",
            )
        try:
            return [CallbackLogEntry.model_validate(item) for item in document]
        except ValidationError as exc:
            raise SkribbleApiError(
                "malformed_response",
                f"A callbacks entry lacks required fields: {exc.error_count()} "
                "problems.",
            ) from exc

    def signature_request(self, signature_request_id: str) -> SignatureRequestSummary:
        """Return the current state of one signature request."""
        path = f"/signature-requests/{quote(signature_request_id, safe='')}"
        document = self._authenticated("GET", path)
        try:
            return SignatureRequestSummary.model_validate(document)
        except ValidationError as exc:
            raise SkribbleApiError(
                "malformed_response",
                "The signature request response lacks its 'id'.",
            ) from exc

    def list_signature_requests(
        self, page_number: int, page_size: int
    ) -> list[SignatureRequestSummary]:
        """Return one page of the account's signature requests."""
        query = urlencode({"page_number": page_number, "page_size": page_size})
        document = self._authenticated("GET", f"/signature-requests?{query}")
        if not isinstance(document, list):
            raise SkribbleApiError(
                "malformed_response",
                "The signature request list is not a JSON array.",
            )
        try:
            return [SignatureRequestSummary.model_validate(item) for item in document]
        except ValidationError as exc:
            raise SkribbleApiError(
                "malformed_response",
                "A signature request in the list lacks its 'id'.",
            ) from exc

    # --- Token -----------------------------------------------------------

    def token(self) -> str:
        """Return a valid access token, logging in when none is cached."""
        credentials = self._credentials()
        cache_key = (self._base_url, credentials.username)
        with _TOKENS_LOCK:
            cached = _TOKENS.get(cache_key)
        if cached and cached.expires_at - time.time() > TOKEN_RENEWAL_MARGIN_SECONDS:
            return cached.token
        return self._login(credentials, cache_key)

    def _login(self, credentials: Credentials, cache_key: tuple[str, str]) -> str:
        body = json.dumps(
            {"username": credentials.username, "api-key": credentials.api_key}
        ).encode()
        issued_at = time.time()
        status, _headers, payload = self._send(
            "POST",
            "/access/login",
            body=body,
            headers={"Content-Type": "application/json", "Accept": "text/plain"},
        )
        token = payload.decode("utf-8", "replace").strip()
        # The token comes back as plain text; some clients see it quoted.
        if token.startswith('"') and token.endswith('"'):
            token = token[1:-1]
        if not token or any(char.isspace() for char in token):
            raise SkribbleApiError(
                "malformed_response",
                "The login response is not a token: expected the JWT as plain text.",
                status,
            )
        self.logins += 1
        with _TOKENS_LOCK:
            _TOKENS[cache_key] = _CachedToken(token, token_expiry(token, issued_at))
        return token

    def _forget_token(self, token: str) -> None:
        with _TOKENS_LOCK:
            for key, cached in list(_TOKENS.items()):
                if cached.token == token:
                    del _TOKENS[key]

    # --- HTTP ------------------------------------------------------------

    def _authenticated(self, method: str, path: str, body: bytes | None = None) -> Any:
        """Send an authenticated call; on 401 log in again once and repeat it."""
        for renewed in (False, True):
            token = self.token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                _status, _headers, payload = self._send(
                    method, path, body=body, headers=headers, parse_json=True
                )
            except SkribbleApiError as error:
                if error.status == 401 and not renewed:
                    self._forget_token(token)
                    continue
                raise
            return json.loads(payload)
        raise AssertionError("unreachable: the loop returns or raises")

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        parse_json: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one call with retries; return status, headers and body.

        Raises SkribbleApiError for a non-retryable response, or when the
        retries or the deadline are used up.
        """
        last: SkribbleApiError | None = None
        for attempt in range(1, self._max_attempts + 1):
            self._require_time(path)
            try:
                status, answer_headers, payload = self._exchange(
                    method, path, body, headers
                )
            except TimeoutError:
                last = SkribbleApiError(
                    "timeout",
                    f"Skribble did not answer {method} {_path_only(path)} within "
                    f"{self._timeout:g} s.",
                )
                wait = None
            except OSError as exc:
                last = SkribbleApiError(
                    "unavailable",
                    f"Skribble could not be reached for {method} {_path_only(path)}: "
                    f"{type(exc).__name__}.",
                )
                wait = None
            else:
                if 200 <= status < 300:
                    if not parse_json or _is_json(payload):
                        return status, answer_headers, payload
                    last = SkribbleApiError(
                        "malformed_response",
                        f"Skribble's answer to {method} {_path_only(path)} is not "
                        "valid JSON.",
                        status,
                    )
                    wait = None
                else:
                    error = _http_error(method, path, status, payload)
                    if not _retryable(status):
                        raise error
                    last = error
                    wait = parse_retry_after(
                        answer_headers.get("retry-after"), time.time()
                    )
            if attempt == self._max_attempts:
                break
            self._pause(attempt, wait, last)
        assert last is not None
        raise last

    def _exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(  # noqa: S310 - base URL is a setting
            self._base_url + path, data=body, method=method, headers=headers
        )
        timeout = self._timeout
        if self.deadline is not None:
            timeout = max(0.1, min(timeout, self.deadline - time.monotonic()))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return (
                    response.status,
                    {key.lower(): value for key, value in response.headers.items()},
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            with error:
                return (
                    error.code,
                    {key.lower(): value for key, value in error.headers.items()},
                    error.read(),
                )
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise error.reason from error
            if isinstance(error.reason, OSError):
                raise error.reason from error
            raise OSError(str(error.reason)) from error

    def _pause(
        self, attempt: int, retry_after: float | None, error: SkribbleApiError
    ) -> None:
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER_SECONDS:
                raise SkribbleApiError(
                    error.code,
                    f"{error.message} Skribble asked to retry after "
                    f"{retry_after:.0f} s, longer than the "
                    f"{MAX_RETRY_AFTER_SECONDS:.0f} s this run waits; the next "
                    "run retries.",
                    error.status,
                )
            # A little jitter keeps parallel workers from returning at once.
            delay = retry_after + random.uniform(0, 0.25)  # noqa: S311
        else:
            ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
            delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
        if self.deadline is not None and time.monotonic() + delay > self.deadline:
            raise SkribbleApiError(
                "deadline_exceeded",
                f"{error.message} No time is left in this run to retry.",
                error.status,
            )
        self.retries += 1
        self._sleep(delay)

    def _require_time(self, path: str) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise SkribbleApiError(
                "deadline_exceeded",
                f"The run's time budget ran out before calling {_path_only(path)}.",
            )


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _is_json(payload: bytes) -> bool:
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]


def _http_error(
    method: str, path: str, status: int, payload: bytes
) -> SkribbleApiError:
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        429: "rate_limited",
    }.get(status, "unavailable" if status >= 500 else "http_error")
    detail = problem_detail(payload)
    message = f"Skribble returned {status} to {method} {_path_only(path)}"
    if detail:
        message += f" ({detail})"
    return SkribbleApiError(code, message + ".", status)
