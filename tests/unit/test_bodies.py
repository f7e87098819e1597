"""Summarizing callback bodies without personal data."""

import hashlib

from skribble_receiver.bodies import summarize_body


def test_hash_and_length_are_kept():
    body = b'{"status": "SIGNED"}'

    summary = summarize_body(body, "application/json")

    assert summary.sha256 == hashlib.sha256(body).hexdigest()
    assert summary.length == len(body)


def test_only_id_and_state_fields_are_kept():
    body = b'{"status": "SIGNED", "email": "anna@example.com", "first_name": "Anna"}'

    summary = summarize_body(body, "application/json")

    assert summary.fields == {"status": "SIGNED"}


def test_field_with_free_text_value_is_dropped():
    summary = summarize_body(b'{"status": "Signed by Anna Muster"}', None)

    assert summary.fields == {}


def test_non_json_body_keeps_hash_only():
    summary = summarize_body(b"\xff\xfe binary", "application/octet-stream")

    assert summary.fields == {}
    assert summary.length == 9


def test_empty_body_is_summarized():
    summary = summarize_body(b"", None)

    assert summary.length == 0
    assert summary.sha256 == hashlib.sha256(b"").hexdigest()


def test_deeply_nested_body_keeps_hash_only():
    body = b"[" * 60000

    summary = summarize_body(body, "application/json")

    assert summary.fields == {}
    assert summary.length == 60000


def test_integer_beyond_dynamodb_precision_is_dropped():
    summary = summarize_body(b'{"id": 1234567890123456789012345678901234567890}', None)

    assert summary.fields == {}


def test_small_integer_is_kept():
    summary = summarize_body(b'{"id": 42}', None)

    assert summary.fields == {"id": 42}
