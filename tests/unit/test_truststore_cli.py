from pathlib import Path

import pytest

from local import pki
from tools.truststore import main


@pytest.fixture(scope="module")
def root() -> pki.Issued:
    return pki.make_root("CLI Root CA")


def test_check_command_passes_good_bundle(
    root: pki.Issued, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "good.pem"
    bundle.write_bytes(pki.pem_bundle(root))

    status = main(["check", str(bundle)])
    errors = capsys.readouterr().err

    assert status == 0
    assert "certificates: 1, errors: 0, warnings: 0" in errors


def test_check_command_fails_on_error(
    root: pki.Issued, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "leaf.pem"
    leaf = pki.make_leaf(root, "client.example.test")
    bundle.write_bytes(pki.pem_bundle(root, leaf))

    status = main(["check", str(bundle)])
    errors = capsys.readouterr().err

    assert status == 1
    assert "error: entry 2 'client.example.test'" in errors


def test_check_command_honours_min_days(
    root: pki.Issued, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "root.pem"
    bundle.write_bytes(pki.pem_bundle(root))

    status = main(["check", str(bundle), "--min-days", "4000"])
    errors = capsys.readouterr().err

    assert status == 1
    assert "less than the minimum of 4000 days (--min-days)" in errors


def test_check_command_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["check", str(tmp_path / "absent.pem")])

    assert "cannot read bundle" in str(raised.value)


def test_describe_command_prints_fingerprint(
    root: pki.Issued, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "root.pem"
    bundle.write_bytes(pki.pem_bundle(root))

    status = main(["describe", str(bundle)])
    output = capsys.readouterr().out

    assert status == 0
    assert f"`{root.sha256_fingerprint().upper()}`" in output
