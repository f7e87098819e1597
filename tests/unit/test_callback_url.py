"""Reading ids from callback URLs, as Skribble delivers them."""

import pytest

from skribble_receiver.callback_url import parse_callback_ids, read_token
from skribble_receiver.errors import MalformedCallback

SR = "4f43614a-de50-bfe1-2df3-4c881fc7840e"
DOC = "29eae6aa-5558-2ada-2870-d4e654c0da5c"
SIG = "894a0240-e01a-2307-4376-0267c6a8d105"


def test_path_segments_give_all_ids():
    ids = parse_callback_ids([SR, DOC, SIG], None)

    assert ids.signature_request_id == SR
    assert ids.document_id == DOC
    assert ids.signature_id == SIG
    assert ids.id_source == "path"


def test_query_string_gives_ids():
    ids = parse_callback_ids([], {"signature_request_id": [SR], "document_id": [DOC]})

    assert ids.signature_request_id == SR
    assert ids.document_id == DOC
    assert ids.signature_id is None
    assert ids.id_source == "query"


def test_html_encoded_ampersands_are_undone():
    # Skribble sends ...?signature_request_id=X&amp;document_id=Y, which API
    # Gateway splits into the keys below.
    query = {"signature_request_id": [SR], "amp;document_id": [DOC]}

    ids = parse_callback_ids([], query)

    assert ids.document_id == DOC


def test_double_html_encoding_is_undone():
    ids = parse_callback_ids(
        [], {"signature_request_id": [SR], "amp;amp;document_id": [DOC]}
    )

    assert ids.document_id == DOC


def test_unreplaced_signature_id_placeholder_is_absent():
    ids = parse_callback_ids([SR, DOC, "SKRIBBLE_SIGNATURE_ID"], None)

    assert ids.signature_id is None


def test_ids_are_lowercased():
    ids = parse_callback_ids([SR.upper(), DOC.upper()], None)

    assert ids.signature_request_id == SR
    assert ids.document_id == DOC


def test_trailing_slash_is_ignored():
    ids = parse_callback_ids([SR, DOC, ""], None)

    assert ids.document_id == DOC
    assert ids.signature_id is None


@pytest.mark.parametrize(
    "value",
    [
        "not-an-id",
        SR + "x",
        SR.replace("-", ""),
        "../../etc/passwd",
        SR + "\n",
        "<script>",
        "",
    ],
)
def test_invalid_signature_request_id_is_rejected(value):
    with pytest.raises(MalformedCallback) as caught:
        parse_callback_ids([value, DOC], None)

    expected = (
        "missing_signature_request_id"
        if value == ""
        else "invalid_signature_request_id"
    )
    assert caught.value.code == expected


def test_invalid_id_is_not_echoed_in_the_message():
    with pytest.raises(MalformedCallback) as caught:
        parse_callback_ids([SR, "secret-looking-junk"], None)

    assert "secret-looking-junk" not in caught.value.message


def test_unreplaced_signature_request_placeholder_is_missing():
    with pytest.raises(MalformedCallback) as caught:
        parse_callback_ids(["SKRIBBLE_SIGNATURE_REQUEST_ID", DOC], None)

    assert caught.value.code == "missing_signature_request_id"


def test_four_path_segments_are_rejected():
    with pytest.raises(MalformedCallback) as caught:
        parse_callback_ids([SR, DOC, SIG, SIG], None)

    assert caught.value.code == "too_many_path_segments"


def test_path_and_query_disagreeing_are_rejected():
    other = "00000000-0000-0000-0000-000000000000"

    with pytest.raises(MalformedCallback) as caught:
        parse_callback_ids([SR], {"signature_request_id": [other]})

    assert caught.value.code == "conflicting_parameter"


def test_repeated_parameter_with_different_values_is_rejected():
    other = "00000000-0000-0000-0000-000000000000"

    with pytest.raises(MalformedCallback) as caught:
        parse_callback_ids(
            [], {"signature_request_id": [SR], "amp;signature_request_id": [other]}
        )

    assert caught.value.code == "conflicting_parameter"


def test_token_is_read_after_an_encoded_ampersand():
    token = read_token(
        {"signature_request_id": [SR], "amp;token": ["s3cr3t-token-value"]}
    )

    assert token == "s3cr3t-token-value"


def test_conflicting_tokens_read_as_absent():
    assert read_token({"token": ["a" * 20, "b" * 20]}) is None
