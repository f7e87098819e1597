"""Read a request body within API Gateway's payload limit, or reject it.

The body is framed by one Content-Length of ASCII digits, or by chunked
Transfer-Encoding. Anything else is a 400, and a body over the 10 MiB
limit is a 413 before more than the limit is read.
"""

from __future__ import annotations

import re
from email.message import Message
from io import BufferedIOBase

# API Gateway's payload limit for REST APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Maximum length of a chunk-size line: hex digits plus chunk extensions.
_MAX_CHUNK_LINE_BYTES = 1024
_DIGITS = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;.*)?\r?\n")


class BodyRejected(Exception):
    """A request body that gets an error response instead of reaching a function.

    `status` and `message` are API Gateway's status and error message.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _invalid(what: str) -> BodyRejected:
    return BodyRejected(400, f"Invalid {what}")


def _too_large() -> BodyRejected:
    return BodyRejected(413, "Request Too Long")


def declared_length(headers: Message) -> int | None:
    """Return the Content-Length, 0 without a body, or None for a chunked body.

    Raises BodyRejected for an invalid or conflicting header, and for a
    length over MAX_BODY_BYTES.
    """
    lengths = headers.get_all("Content-Length") or []
    encodings = headers.get_all("Transfer-Encoding") or []
    if encodings:
        # A body framed both ways is how requests are smuggled past proxies.
        if lengths:
            raise _invalid("request: both Content-Length and Transfer-Encoding")
        if [value.strip().lower() for value in encodings] != ["chunked"]:
            raise _invalid("Transfer-Encoding")
        return None
    if not lengths:
        return 0
    values = {value.strip() for value in lengths}
    if len(values) != 1:
        raise _invalid("Content-Length")
    [value] = values
    # int() would also take "-5", "+5" and "1_0".
    if not _DIGITS.fullmatch(value):
        raise _invalid("Content-Length")
    length = int(value)
    if length > MAX_BODY_BYTES:
        raise _too_large()
    return length


def read_body(headers: Message, stream: BufferedIOBase) -> bytes:
    """Read the body that `headers` declare from `stream`.

    Raises BodyRejected as `declared_length` does, for invalid chunked
    framing, and for a chunked body over MAX_BODY_BYTES. Raises EOFError
    when the stream ends before the body does.
    """
    length = declared_length(headers)
    if length is None:
        return _read_chunked(stream)
    body = stream.read(length) if length else b""
    if len(body) != length:
        raise EOFError(f"body ended after {len(body)} of {length} bytes")
    return body


def _read_chunked(stream: BufferedIOBase) -> bytes:
    body = bytearray()
    while True:
        line = stream.readline(_MAX_CHUNK_LINE_BYTES)
        if not line:
            raise EOFError("chunked body ended before its last chunk")
        size_line = _CHUNK_SIZE.fullmatch(line)
        if size_line is None:
            raise _invalid("chunked body")
        size = int(size_line[1], 16)
        if size == 0:
            break
        if len(body) + size > MAX_BODY_BYTES:
            raise _too_large()
        chunk = stream.read(size)
        if len(chunk) != size or stream.readline(3) not in (b"\r\n", b"\n"):
            raise _invalid("chunked body")
        body += chunk
    # Trailer fields end with an empty line; the gateway does not pass them on.
    while True:
        line = stream.readline(_MAX_CHUNK_LINE_BYTES)
        if line in (b"\r\n", b"\n"):
            return bytes(body)
        if not line:
            raise EOFError("chunked body ended in its trailer")
        if not line.endswith(b"\n"):
            raise _invalid("chunked body")
