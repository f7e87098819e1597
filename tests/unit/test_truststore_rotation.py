"""The truststore through each stage of a client certificate rotation.

The old client certificate is issued by an intermediate under one root, the
new one by a new intermediate under a new root, as when Skribble's successor
certificate comes from a different AlphaSSL CA. Pins are checked by the
receiver; here each stage checks which certificates the bundle accepts and
which pins the `client` command reports.
"""

import datetime
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from local import pki
from tools.client_certificate import check_client_certificate
from tools.truststore import main
from tools.truststore_check import Severity, check_bundle

HOST = "api.skribble.example"


@dataclass(frozen=True)
class Hierarchy:
    old_root: pki.Issued
    old_issuer: pki.Issued
    old_leaf: pki.Issued
    new_root: pki.Issued
    new_issuer: pki.Issued
    new_leaf: pki.Issued


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    old_root = pki.make_root("Old Root")
    old_issuer = pki.make_intermediate(old_root, "Old Issuing CA")
    new_root = pki.make_root("New Root")
    new_issuer = pki.make_intermediate(
        new_root,
        "New Issuing CA",
        extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    return Hierarchy(
        old_root=old_root,
        old_issuer=old_issuer,
        old_leaf=pki.make_leaf(old_issuer, HOST, client=True, server=True),
        new_root=new_root,
        new_issuer=new_issuer,
        new_leaf=pki.make_leaf(new_issuer, HOST, client=False, server=True),
    )


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def accepts(bundle: bytes, leaf: pki.Issued) -> bool:
    report = check_bundle(bundle, now=now())
    assert report.ok, [str(f) for f in report.errors]
    return check_client_certificate(leaf.cert, report.certificates, now=now()).ok


def test_old_only_stage_accepts_old_certificate(hierarchy: Hierarchy) -> None:
    bundle = pki.pem_bundle(hierarchy.old_root, hierarchy.old_issuer)

    assert accepts(bundle, hierarchy.old_leaf)
    assert not accepts(bundle, hierarchy.new_leaf)


def test_overlap_stage_accepts_both_certificates(hierarchy: Hierarchy) -> None:
    bundle = pki.pem_bundle(
        hierarchy.old_root,
        hierarchy.old_issuer,
        hierarchy.new_root,
        hierarchy.new_issuer,
    )

    assert accepts(bundle, hierarchy.old_leaf)
    assert accepts(bundle, hierarchy.new_leaf)


def test_new_intermediate_without_its_root_rejected(hierarchy: Hierarchy) -> None:
    bundle = pki.pem_bundle(
        hierarchy.old_root, hierarchy.old_issuer, hierarchy.new_issuer
    )

    report = check_bundle(bundle, now=now())

    assert [e.code for e in report.errors] == ["missing-issuer"]
    assert "CN=New Root" in report.errors[0].message


def test_old_removed_stage_accepts_only_new(hierarchy: Hierarchy) -> None:
    bundle = pki.pem_bundle(hierarchy.new_root, hierarchy.new_issuer)

    assert accepts(bundle, hierarchy.new_leaf)
    assert not accepts(bundle, hierarchy.old_leaf)


def test_new_certificate_without_client_auth_warns(hierarchy: Hierarchy) -> None:
    report = check_bundle(
        pki.pem_bundle(hierarchy.new_root, hierarchy.new_issuer), now=now()
    )

    result = check_client_certificate(
        hierarchy.new_leaf.cert, report.certificates, now=now()
    )

    assert result.extended_key_usage == ["serverAuth"]
    assert [severity for severity, _ in result.findings] == [Severity.WARNING]
    assert "no clientAuth extended key usage" in result.findings[0][1]


def test_client_command_prints_both_pins(
    hierarchy: Hierarchy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.pem_bundle(hierarchy.old_root, hierarchy.old_issuer))
    leaf = tmp_path / "leaf.pem"
    hierarchy.old_leaf.write(leaf)

    status = main(["client", str(bundle), str(leaf)])
    output = capsys.readouterr().out

    assert status == 0
    cert_pin = hierarchy.old_leaf.sha256_fingerprint()
    key_pin = hierarchy.old_leaf.public_key_sha256()
    assert f"ClientCertSha256Pins entry: {cert_pin}" in output
    assert f"ClientPublicKeySha256Pins entry: {key_pin}" in output
    assert "chain in bundle: Old Issuing CA -> Old Root" in output
    assert "extended key usage: serverAuth, clientAuth" in output


def test_client_command_fails_when_issuer_missing(
    hierarchy: Hierarchy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.pem_bundle(hierarchy.old_root, hierarchy.old_issuer))
    leaf = tmp_path / "leaf.pem"
    hierarchy.new_leaf.write(leaf)

    status = main(["client", str(bundle), str(leaf)])
    errors = capsys.readouterr().err

    assert status == 1
    assert "issuer 'CN=New Issuing CA" in errors
    assert "is not in the bundle" in errors
