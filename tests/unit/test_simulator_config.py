import pytest

from local.simulator.config import SimulatorConfig, parse_route, require_loopback_host


def test_route_parses_type_and_field():
    assert parse_route("start_sign=callback_error_url") == (
        "START_SIGN",
        "callback_error_url",
    )


def test_route_none_disables_type():
    assert parse_route("IDENT_ERROR=none") == ("IDENT_ERROR", None)


@pytest.mark.parametrize("text", ["SUCCESS", "NOPE=callback_error_url", "UPDATE=x"])
def test_invalid_route_rejected(text):
    with pytest.raises(ValueError, match="invalid route"):
        parse_route(text)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com"])
def test_non_loopback_listen_address_rejected(host):
    with pytest.raises(ValueError, match="listen address"):
        require_loopback_host(host)


def test_client_cert_without_key_rejected(tmp_path):
    config = SimulatorConfig(client_cert=tmp_path / "cert.pem")

    with pytest.raises(ValueError, match="--client-key"):
        config.validate()
