import pytest

from local.simulator.callback_url import (
    fill_placeholders,
    html_encode,
    redact,
    require_loopback_url,
)

TEMPLATE = (
    "https://127.0.0.1/cb/SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID"
    "/SKRIBBLE_SIGNATURE_ID"
)


def test_placeholders_replaced_with_signature():
    url = fill_placeholders(TEMPLATE, "sr-1", "doc-2", "sig-3")

    assert url == "https://127.0.0.1/cb/sr-1/doc-2/sig-3"


def test_signature_placeholder_stays_literal_without_signature():
    url = fill_placeholders(TEMPLATE, "sr-1", "doc-2", None)

    assert url.endswith("/sr-1/doc-2/SKRIBBLE_SIGNATURE_ID")


def test_html_encode_turns_ampersand_into_entity():
    encoded = html_encode("https://127.0.0.1/cb?a=1&token=x")

    assert encoded == "https://127.0.0.1/cb?a=1&amp;token=x"


def test_html_encode_leaves_path_url_unchanged():
    url = "https://127.0.0.1/callbacks/update/sr-1/doc-2/sig-3"

    assert html_encode(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8443/cb",
        "http://localhost/cb",
        "https://[::1]:9000/cb",
    ],
)
def test_loopback_urls_accepted(url):
    require_loopback_url(url)


@pytest.mark.parametrize(
    "url",
    ["https://10.0.0.1/cb", "https://192.0.2.7/cb", "ftp://127.0.0.1/cb", "cb"],
)
def test_non_loopback_urls_rejected(url):
    with pytest.raises(ValueError, match="callback URL"):
        require_loopback_url(url)


def test_redact_hides_token_even_after_html_encoding():
    redacted = redact("https://127.0.0.1/cb?a=1&amp;token=secret")

    assert "secret" not in redacted
    assert "token=***" in redacted
