"""Checking the client certificate API Gateway forwards."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from local.apigw_event import client_cert_context
from local.pki import Issued, make_intermediate, make_leaf, make_root, make_rsa_key
from skribble_receiver.certificates import check_client_certificate, host_matches
from skribble_receiver.errors import ClientCertificateRejected

HOSTS = ("api.skribble.com",)
GARBAGE_PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@pytest.fixture(scope="module")
def intermediate() -> Issued:
    return make_intermediate(make_root("Test Root"), "Test AlphaSSL CA")


@pytest.fixture(scope="module")
def skribble(intermediate: Issued) -> Issued:
    return make_leaf(intermediate, "api.skribble.com")


def check(certificate: Issued, **overrides):
    options: dict[str, Any] = {
        "allowed_hosts": HOSTS,
        "cert_pins": frozenset(),
        "public_key_pins": frozenset(),
    }
    options.update(overrides)
    return check_client_certificate(client_cert_context(certificate.cert), **options)


def rejection_code(certificate: Issued, **overrides) -> str:
    with pytest.raises(ClientCertificateRejected) as caught:
        check(certificate, **overrides)
    return caught.value.code


def cn_only_certificate(issuer: Issued, common_name: str) -> Issued:
    """Return a leaf with a common name and no subjectAltName extension."""
    key = make_rsa_key()
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .sign(issuer.key, hashes.SHA256())
    )
    return Issued(cert=cert, key=key)


def test_skribble_certificate_is_accepted(skribble):
    info = check(skribble)

    assert info.sha256 == skribble.sha256_fingerprint()
    assert info.public_key_sha256 == skribble.public_key_sha256()
    assert info.client_auth is True


def test_missing_certificate_is_rejected():
    with pytest.raises(ClientCertificateRejected) as caught:
        check_client_certificate(
            None,
            allowed_hosts=HOSTS,
            cert_pins=frozenset(),
            public_key_pins=frozenset(),
        )

    assert caught.value.code == "certificate_missing"


def test_garbage_pem_is_rejected():
    with pytest.raises(ClientCertificateRejected) as caught:
        check_client_certificate(
            {"clientCertPem": GARBAGE_PEM},
            allowed_hosts=HOSTS,
            cert_pins=frozenset(),
            public_key_pins=frozenset(),
        )

    assert caught.value.code == "certificate_unparseable"


def test_other_host_is_rejected(intermediate):
    stranger = make_leaf(intermediate, "attacker.example.com")

    assert rejection_code(stranger) == "certificate_host_not_allowed"


def test_subject_dn_string_is_not_trusted(intermediate):
    # The subject names Skribble, but the SAN, which is what counts, does not.
    stranger = make_leaf(intermediate, "api.skribble.com.attacker.example")

    assert rejection_code(stranger) == "certificate_host_not_allowed"


def test_common_name_counts_only_without_san(intermediate):
    legacy = cn_only_certificate(intermediate, "api.skribble.com")

    assert check(legacy).subject_dn == "CN=api.skribble.com"


def test_expired_certificate_is_rejected(intermediate):
    now = datetime.now(UTC)
    expired = make_leaf(
        intermediate,
        "api.skribble.com",
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )

    assert rejection_code(expired) == "certificate_expired"


def test_not_yet_valid_certificate_is_rejected(intermediate):
    now = datetime.now(UTC)
    future = make_leaf(
        intermediate,
        "api.skribble.com",
        not_before=now + timedelta(days=1),
        not_after=now + timedelta(days=30),
    )

    assert rejection_code(future) == "certificate_not_yet_valid"


def test_certificate_pin_match_is_accepted(skribble):
    info = check(skribble, cert_pins=frozenset({skribble.sha256_fingerprint()}))

    assert info.sha256 == skribble.sha256_fingerprint()


def test_public_key_pin_match_is_accepted(skribble):
    info = check(skribble, public_key_pins=frozenset({skribble.public_key_sha256()}))

    assert info.public_key_sha256 == skribble.public_key_sha256()


def test_pin_mismatch_is_rejected(skribble, intermediate):
    other = make_leaf(intermediate, "api.skribble.com")

    code = rejection_code(skribble, cert_pins=frozenset({other.sha256_fingerprint()}))

    assert code == "certificate_pin_mismatch"


def test_rejection_carries_fingerprints_for_rotation(skribble, intermediate):
    other = make_leaf(intermediate, "api.skribble.com")

    with pytest.raises(ClientCertificateRejected) as caught:
        check(skribble, cert_pins=frozenset({other.sha256_fingerprint()}))

    assert caught.value.certificate is not None
    assert caught.value.certificate.sha256 == skribble.sha256_fingerprint()


def test_server_auth_only_certificate_is_accepted_and_flagged(intermediate):
    server_only = make_leaf(intermediate, "api.skribble.com", client=False, server=True)

    info = check(server_only)

    assert info.client_auth is False
    assert info.extended_key_usages == ("serverAuth",)


@pytest.mark.parametrize(
    ("name", "host", "expected"),
    [
        ("api.skribble.com", "api.skribble.com", True),
        ("*.skribble.com", "api.skribble.com", False),
        ("*.skribble.com", "*.skribble.com", True),
        ("*.skribble.com", "a.api.skribble.com", False),
        ("*.skribble.com", "skribble.com", False),
        ("api.skribble.com", "skribble.com", False),
    ],
)
def test_host_matching(name, host, expected):
    assert host_matches(name, host) is expected


def test_wildcard_certificate_is_rejected_by_default(intermediate):
    wildcard = make_leaf(intermediate, "*.skribble.com")

    assert rejection_code(wildcard) == "certificate_host_not_allowed"


def test_wildcard_certificate_is_accepted_when_allowed(intermediate):
    wildcard = make_leaf(intermediate, "*.skribble.com")

    info = check(wildcard, allowed_hosts=("*.skribble.com",))

    assert info.sha256 == wildcard.sha256_fingerprint()
