"""Body framing and API Gateway's payload limit, as the local gateway reads them."""

from __future__ import annotations

import io
from email.message import Message

import pytest

from local.request_body import MAX_BODY_BYTES, BodyRejected, read_body


def _headers(*pairs: tuple[str, str]) -> Message:
    headers = Message()
    for name, value in pairs:
        headers[name] = value
    return headers


def _rejection(headers: Message, body: bytes = b"") -> BodyRejected:
    with pytest.raises(BodyRejected) as caught:
        read_body(headers, io.BytesIO(body))
    return caught.value


def test_content_length_body_is_read():
    headers = _headers(("Content-Length", "2"))

    assert read_body(headers, io.BytesIO(b"{}rest")) == b"{}"


def test_missing_length_means_empty_body():
    assert read_body(_headers(), io.BytesIO(b"next request")) == b""


@pytest.mark.parametrize("value", ["-5", "abc", "+5", "1_0", "5, 6", "٣", ""])
def test_invalid_content_length_is_400(value):
    rejection = _rejection(_headers(("Content-Length", value)))

    assert rejection.status == 400
    assert rejection.message == "Invalid Content-Length"


def test_conflicting_content_lengths_are_400():
    headers = _headers(("Content-Length", "2"), ("Content-Length", "3"))

    assert _rejection(headers).status == 400


def test_length_over_limit_is_413_before_reading():
    stream = io.BytesIO(b"x" * 10)
    headers = _headers(("Content-Length", str(MAX_BODY_BYTES + 1)))

    with pytest.raises(BodyRejected) as caught:
        read_body(headers, stream)

    assert caught.value.status == 413
    assert stream.tell() == 0


def test_short_body_raises_eof():
    with pytest.raises(EOFError):
        read_body(_headers(("Content-Length", "5")), io.BytesIO(b"{}"))


def test_chunked_body_is_joined():
    body = b"1\r\n{\r\n1;ext=1\r\n}\r\n0\r\nTrailer: x\r\n\r\nnext"
    headers = _headers(("Transfer-Encoding", "chunked"))

    assert read_body(headers, io.BytesIO(body)) == b"{}"


def test_chunked_body_over_limit_is_413():
    size = format(MAX_BODY_BYTES + 1, "x").encode()
    headers = _headers(("Transfer-Encoding", "chunked"))

    assert _rejection(headers, size + b"\r\n").status == 413


@pytest.mark.parametrize(
    "body", [b"zz\r\n", b"2\r\n{}xx0\r\n\r\n", b"2\r\n{}\r\n0\r\nbroken"]
)
def test_broken_chunked_body_is_400_or_eof(body):
    headers = _headers(("Transfer-Encoding", "chunked"))

    with pytest.raises((BodyRejected, EOFError)):
        read_body(headers, io.BytesIO(body))


def test_both_framings_are_400():
    headers = _headers(("Content-Length", "2"), ("Transfer-Encoding", "chunked"))

    assert _rejection(headers).status == 400


def test_other_transfer_encoding_is_400():
    headers = _headers(("Transfer-Encoding", "gzip, chunked"))

    assert _rejection(headers).message == "Invalid Transfer-Encoding"
