"""The subset of Skribble's API v2 that the product calls, under `/v2`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from .faults import Faults
from .http_types import BadRequest, Request, Response, json_response, problem
from .jwt import TokenError, TokenIssuer
from .lifecycle import Lifecycle
from .state import SignatureRequest, Store
from .views import callback_entry, signature_response

Route = tuple[str, str, Callable[..., Response]]

_STATUS_VALUES = ("OPEN", "DECLINED", "WITHDRAWN", "SIGNED", "ERROR")
# Skribble's documented default for `page_size`.
_DEFAULT_PAGE_SIZE = 50
# A body that starts like JSON and breaks off, as a truncated response would.
_MALFORMED_BODY = b'{"id": "truncated'


class SkribbleApi:
    """Route handlers for `/v2`, with the faults of `Faults` applied."""

    def __init__(
        self,
        store: Store,
        tokens: TokenIssuer,
        faults: Faults,
        lifecycle: Lifecycle,
        credentials: tuple[str, str],
        base_url: Callable[[], str],
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._tokens = tokens
        self._faults = faults
        self._username, self._api_key = credentials
        self._base_url = base_url

    def routes(self) -> list[Route]:
        sr = r"/v2/signature-requests/(?P<request_id>[^/]+)"
        return [
            ("POST", r"/v2/access/login", self.login),
            ("GET", r"/v2/signature-requests", self._authenticated(self.list_requests)),
            ("POST", r"/v2/signature-requests", self._authenticated(self.create)),
            ("GET", sr, self._authenticated(self.get)),
            ("GET", sr + "/callbacks", self._authenticated(self.callbacks)),
            ("POST", sr + "/callbacks", self._authenticated(self.callbacks)),
        ]

    def before(self, request: Request) -> None:
        """Apply the delay fault to every `/v2` request."""
        delay_ms = self._faults.slow_ms
        if delay_ms:
            time.sleep(delay_ms / 1000)

    def login(self, request: Request) -> Response:
        if self._faults.take("login_429"):
            return self._rate_limited(request, 429, "too many login requests")
        credentials = self._login_fields(request)
        username = credentials.get("username")
        api_key = credentials.get("api-key")
        if not isinstance(username, str) or not isinstance(api_key, str):
            return problem(
                400, "login needs 'username' and 'api-key' strings", request.path
            )
        if username != self._username or api_key != self._api_key:
            return problem(401, "invalid username or api-key", request.path)
        token = self._tokens.issue(username)
        return Response(200, token.encode(), "text/plain")

    def list_requests(self, request: Request) -> Response:
        requests = self._filtered(request.query)
        requests.sort(key=lambda item: item.created_at, reverse=True)
        if "page_number" in request.query:
            page_number = _positive_int(request.query, "page_number", minimum=1)
            page_size = _positive_int(request.query, "page_size", minimum=0)
            start = (page_number - 1) * page_size
            requests = requests[start : start + page_size]
        owner = self._username
        base_url = self._base_url()
        return json_response(
            [signature_response(item, owner, base_url) for item in requests]
        )

    def create(self, request: Request) -> Response:
        """Create a signature request from a `CreateSignatureRequest` body.

        Only `title`, `message`, `signatures[].account_email` and the three
        callback URL fields are used; documents and signing options are ignored.
        """
        created = self._lifecycle.create(request.json())
        with self._store.locked():
            document = signature_response(created, self._username, self._base_url())
        return json_response(document)

    def get(self, request: Request, request_id: str) -> Response:
        with self._store.locked() as store:
            found = store.signature_requests.get(request_id)
            if found is None:
                return problem(
                    404, f"signature request {request_id} not found", request.path
                )
            document = signature_response(found, self._username, self._base_url())
        return json_response(document)

    def callbacks(self, request: Request, request_id: str) -> Response:
        if request.method == "GET" and self._faults.callbacks_get_405:
            response = problem(405, "GET is not allowed here: use POST", request.path)
            response.headers["Allow"] = "POST"
            return response
        with self._store.locked() as store:
            if request_id not in store.signature_requests:
                return problem(
                    404, f"signature request {request_id} not found", request.path
                )
            entries = [
                callback_entry(callback, self._username)
                for callback in sorted(
                    store.callbacks_of(request_id), key=lambda item: item.created_at
                )
            ]
        return json_response(entries)

    def _authenticated(
        self, handler: Callable[..., Response]
    ) -> Callable[..., Response]:
        def guarded(request: Request, **params: str) -> Response:
            if self._faults.take("api_429"):
                return self._rate_limited(request, 429, "too many requests")
            if self._faults.take("api_503"):
                return self._rate_limited(request, 503, "service unavailable")
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return problem(
                    401,
                    "missing bearer token: log in at /v2/access/login",
                    request.path,
                )
            try:
                self._tokens.verify(token.strip())
            except TokenError as exc:
                return problem(401, str(exc), request.path)
            response = handler(request, **params)
            if response.status == 200 and self._faults.take("malformed"):
                response.body = _MALFORMED_BODY
            return response

        return guarded

    def _rate_limited(self, request: Request, status: int, detail: str) -> Response:
        response = problem(status, detail, request.path)
        response.headers["Retry-After"] = str(self._faults.retry_after)
        return response

    def _filtered(self, query: dict[str, str]) -> list[SignatureRequest]:
        for name in ("status_overall", "signature_status"):
            if name in query and query[name] not in _STATUS_VALUES:
                raise BadRequest(
                    f"invalid {name} {query[name]!r}: expected one of "
                    f"{', '.join(_STATUS_VALUES)}"
                )
        with self._store.locked() as store:
            items = list(store.signature_requests.values())
        if "account_email" in query:
            email = query["account_email"]
            items = [
                item
                for item in items
                if any(s.account_email == email for s in item.signatures)
            ]
        if "search" in query:
            items = [item for item in items if query["search"] in item.title]
        if "signature_status" in query:
            code = query["signature_status"]
            items = [
                item
                for item in items
                if any(s.status_code == code for s in item.signatures)
            ]
        if "status_overall" in query:
            items = [
                item for item in items if item.status_overall == query["status_overall"]
            ]
        return items

    @staticmethod
    def _login_fields(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(request.body.decode("utf-8", "replace")))
        return request.json()


def _positive_int(query: dict[str, str], name: str, minimum: int) -> int:
    raw = query.get(name, str(_DEFAULT_PAGE_SIZE) if name == "page_size" else "")
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid {name} {raw!r}: expected an integer") from exc
    if value < minimum:
        raise BadRequest(f"invalid {name} {value}: must be at least {minimum}")
    return value
