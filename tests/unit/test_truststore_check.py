import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from local import pki
from tools.truststore_check import (
    DEFAULT_MIN_DAYS,
    CheckReport,
    Finding,
    Severity,
    check_bundle,
)

REPOSITORY = Path(__file__).resolve().parents[2]
SHIPPED_BUNDLE = REPOSITORY / "truststore" / "skribble-truststore.pem"
DAY = datetime.timedelta(days=1)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@pytest.fixture(scope="module")
def root() -> pki.Issued:
    return pki.make_root("Test Root CA")


@pytest.fixture(scope="module")
def intermediate(root: pki.Issued) -> pki.Issued:
    return pki.make_intermediate(root, "Test Issuing CA")


def check(data: bytes, **options: int) -> CheckReport:
    return check_bundle(data, now=now(), **options)


def only_error(report: CheckReport) -> Finding:
    assert len(report.errors) == 1, [str(f) for f in report.errors]
    return report.errors[0]


def test_good_bundle_passes(root: pki.Issued, intermediate: pki.Issued) -> None:
    report = check(pki.pem_bundle(root, intermediate))

    assert report.errors == []
    assert report.warnings == []
    assert len(report.certificates) == 2


def test_ec_chain_passes() -> None:
    ec_root = pki.make_root("EC Root", key=pki.make_ec_key("P-384"))
    ec_issuer = pki.make_intermediate(
        ec_root, "EC Issuing CA", key=pki.make_ec_key("P-256")
    )

    report = check(pki.pem_bundle(ec_root, ec_issuer))

    assert report.errors == []


def test_expired_certificate_rejected(root: pki.Issued) -> None:
    expired = pki.make_intermediate(
        root,
        "Expired CA",
        not_before=now() - 400 * DAY,
        not_after=now() - DAY,
    )

    error = only_error(check(pki.pem_bundle(root, expired)))

    assert error.code == "expired"
    assert "expired on" in error.message
    assert "'Expired CA'" in str(error)


def test_certificate_expiring_within_min_days_rejected(root: pki.Issued) -> None:
    expiring = pki.make_intermediate(root, "Expiring CA", not_after=now() + 10 * DAY)

    error = only_error(check(pki.pem_bundle(root, expiring), min_days=30))

    assert error.code == "expiring"
    assert "less than the minimum of 30 days" in error.message


def test_certificate_expiring_within_warn_days_warns(root: pki.Issued) -> None:
    expiring = pki.make_intermediate(root, "Soon CA", not_after=now() + 60 * DAY)

    report = check(pki.pem_bundle(root, expiring), min_days=30, warn_days=90)

    assert report.errors == []
    assert [w.code for w in report.warnings] == ["expiring"]


def test_not_yet_valid_certificate_rejected(root: pki.Issued) -> None:
    future = pki.make_intermediate(root, "Future CA", not_before=now() + 2 * DAY)

    error = only_error(check(pki.pem_bundle(root, future)))

    assert error.code == "not-yet-valid"


def test_intermediate_without_its_root_rejected(intermediate: pki.Issued) -> None:
    error = only_error(check(pki.pem_bundle(intermediate)))

    assert error.code == "missing-issuer"
    assert "CN=Test Root CA" in error.message
    assert "is not in the bundle" in error.message


def test_private_key_rejected(root: pki.Issued) -> None:
    data = pki.pem_bundle(root) + root.key_pem()

    report = check(data)
    error = only_error(report)

    assert error.code == "private-key"
    assert error.entry == 2
    assert "contains a private key (PRIVATE KEY)" in error.message


def test_private_key_content_not_in_messages(root: pki.Issued) -> None:
    key_body = root.key_pem().splitlines()[1].decode()

    report = check(pki.pem_bundle(root) + root.key_pem())

    assert all(key_body not in str(finding) for finding in report.findings)


def test_leaf_certificate_rejected(root: pki.Issued, intermediate: pki.Issued) -> None:
    leaf = pki.make_leaf(intermediate, "client.example.test")

    error = only_error(check(pki.pem_bundle(root, intermediate, leaf)))

    assert error.code == "not-ca"
    assert "leaf certificate (basicConstraints CA:FALSE)" in error.message
    assert "'client.example.test'" in str(error)


def test_weak_rsa_key_rejected(root: pki.Issued) -> None:
    weak = pki.make_intermediate(root, "Weak CA", key=pki.make_rsa_key(1024))

    error = only_error(check(pki.pem_bundle(root, weak)))

    assert error.code == "weak-key"
    assert "weak key: RSA 1024 bits" in error.message


def test_unsupported_curve_rejected(root: pki.Issued) -> None:
    p521 = pki.make_intermediate(root, "P-521 CA", key=pki.make_ec_key("P-521"))

    error = only_error(check(pki.pem_bundle(root, p521)))

    assert error.code == "weak-key"
    assert "unsupported EC curve secp521r1" in error.message


def test_weak_signature_algorithm_rejected(root: pki.Issued) -> None:
    sha224 = pki.make_intermediate(root, "SHA-224 CA", signature_hash=hashes.SHA224())

    error = only_error(check(pki.pem_bundle(root, sha224)))

    assert error.code == "signature-algorithm"
    assert "sha224WithRSAEncryption" in error.message


def test_root_with_weak_self_signature_warns() -> None:
    old_root = pki.make_root("Old Root", signature_hash=hashes.SHA224())

    report = check(pki.pem_bundle(old_root))

    assert report.errors == []
    assert [w.code for w in report.warnings] == ["signature-algorithm"]


def test_duplicate_certificate_rejected(root: pki.Issued) -> None:
    error = only_error(check(pki.pem_bundle(root, root)))

    assert error.code == "duplicate"
    assert error.entry == 2
    assert "duplicate of entry 1" in error.message


def test_garbage_certificate_block_rejected(root: pki.Issued) -> None:
    garbage = (
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    )

    error = only_error(check(pki.pem_bundle(root) + garbage))

    assert error.code == "invalid-pem"
    assert error.entry == 2
    assert "does not parse as an X.509 certificate" in error.message


def test_text_outside_pem_blocks_rejected(root: pki.Issued) -> None:
    error = only_error(check(b"# GlobalSign roots\n" + pki.pem_bundle(root)))

    assert error.code == "invalid-pem"
    assert "text outside PEM blocks at line 1" in error.message


def test_unterminated_pem_block_rejected(root: pki.Issued) -> None:
    truncated = pki.pem_bundle(root) + b"-----BEGIN CERTIFICATE-----\nMIIB\n"

    error = only_error(check(truncated))

    assert error.code == "invalid-pem"
    assert "has no matching END line" in error.message


def test_other_pem_type_rejected(root: pki.Issued) -> None:
    request = (
        b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n"
        b"-----END CERTIFICATE REQUEST-----\n"
    )

    error = only_error(check(pki.pem_bundle(root) + request))

    assert error.code == "not-a-certificate"
    assert "'CERTIFICATE REQUEST'" in error.message


def test_empty_bundle_rejected() -> None:
    error = only_error(check(b"\n"))

    assert error.code == "empty"


def test_signature_from_wrong_key_rejected(root: pki.Issued) -> None:
    impostor = pki.make_root("Test Root CA")
    forged = pki.make_intermediate(impostor, "Forged CA")

    report = check(pki.pem_bundle(root, forged))

    assert [e.code for e in report.errors] == ["bad-signature"]


def test_chain_longer_than_api_gateway_allows_rejected(root: pki.Issued) -> None:
    level_1 = pki.make_intermediate(root, "Level 1 CA", path_length=None)
    level_2 = pki.make_intermediate(level_1, "Level 2 CA", path_length=None)
    level_3 = pki.make_intermediate(level_2, "Level 3 CA", path_length=None)

    report = check(pki.pem_bundle(root, level_1, level_2, level_3))

    assert [e.code for e in report.errors] == ["chain-too-long"]
    assert "'Level 3 CA'" in str(report.errors[0])


def test_path_length_constraint_violation_rejected(root: pki.Issued) -> None:
    constrained = pki.make_intermediate(root, "Constrained CA", path_length=0)
    below = pki.make_intermediate(constrained, "Below CA")

    report = check(pki.pem_bundle(root, constrained, below))

    assert [e.code for e in report.errors] == ["path-length"]
    assert "'Below CA'" in str(report.errors[0])


def test_cross_signed_certificate_warns(root: pki.Issued) -> None:
    new_root = pki.make_root("New Root CA")
    cross = pki.make_cross_signed(new_root, root)

    report = check(pki.pem_bundle(root, new_root, cross))

    assert report.errors == []
    assert [w.code for w in report.warnings] == ["cross-signed"]
    assert report.warnings[0].entry == 3


def test_server_auth_only_intermediate_warns(root: pki.Issued) -> None:
    server_only = pki.make_intermediate(
        root,
        "Server Only CA",
        extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH],
    )

    report = check(pki.pem_bundle(root, server_only))

    assert report.errors == []
    assert [w.code for w in report.warnings] == ["no-client-auth"]


def test_finding_names_certificate_and_fingerprint(root: pki.Issued) -> None:
    weak = pki.make_intermediate(root, "Named CA", key=pki.make_rsa_key(1024))

    error = only_error(check(pki.pem_bundle(root, weak)))

    assert error.severity is Severity.ERROR
    assert error.subject == f"'Named CA' (SHA-256 {weak.sha256_fingerprint()[:16]})"
    assert str(error).startswith("error: entry 2 'Named CA' (SHA-256 ")


def test_shipped_bundle_passes() -> None:
    report = check_bundle(
        SHIPPED_BUNDLE.read_bytes(), now=now(), min_days=DEFAULT_MIN_DAYS
    )

    assert report.errors == []
    assert len(report.certificates) == 4


def test_shipped_bundle_listed_in_readme() -> None:
    readme = (SHIPPED_BUNDLE.parent / "README.md").read_text()
    report = check_bundle(SHIPPED_BUNDLE.read_bytes(), now=now())

    for item in report.certificates:
        assert item.sha256.upper() in readme, item.label
