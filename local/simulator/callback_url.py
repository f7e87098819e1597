"""Callback URL handling: placeholders, HTML encoding and the loopback rule."""

from __future__ import annotations

import html
import ipaddress
import socket
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SIGNATURE_REQUEST_PLACEHOLDER = "SKRIBBLE_SIGNATURE_REQUEST_ID"
DOCUMENT_PLACEHOLDER = "SKRIBBLE_DOCUMENT_ID"
SIGNATURE_PLACEHOLDER = "SKRIBBLE_SIGNATURE_ID"


def fill_placeholders(
    template: str,
    signature_request_id: str,
    document_id: str,
    signature_id: str | None,
) -> str:
    """Replace Skribble's placeholders in a callback URL template.

    Without `signature_id` the signature placeholder stays literal, as
    Skribble leaves it in callbacks that do not follow a signature.
    """
    url = template.replace(SIGNATURE_REQUEST_PLACEHOLDER, signature_request_id)
    url = url.replace(DOCUMENT_PLACEHOLDER, document_id)
    if signature_id is not None:
        url = url.replace(SIGNATURE_PLACEHOLDER, signature_id)
    return url


def html_encode(url: str) -> str:
    """Encode a URL as Skribble does before calling it, so `&` becomes `&amp;`.

    NOTE: Skribble documents only that callback URLs are HTML-encoded;
    `html.escape` with quotes is the model used here.
    """
    return html.escape(url, quote=True)


def require_loopback_url(url: str) -> None:
    """Raise ValueError unless `url` is http(s) to a loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"callback URL {redact(url)!r} is invalid: expected http(s)://HOST/..."
        )
    host = parts.hostname
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise ValueError(
            f"callback URL host {host!r} does not resolve: use 127.0.0.1 or ::1"
        ) from exc
    for address in addresses:
        if not ipaddress.ip_address(address.split("%")[0]).is_loopback:
            raise ValueError(
                f"callback URL host {host!r} is not loopback: the simulator "
                "only calls 127.0.0.1, ::1 or localhost"
            )


def redact(url: str) -> str:
    """Hide the value of `token` query parameters so URLs can be logged."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    hidden = [(key, "***" if key.endswith("token") else value) for key, value in pairs]
    return urlunsplit(parts._replace(query=urlencode(hidden, safe="*;")))
