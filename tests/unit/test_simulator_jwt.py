import base64
import json
import time

import pytest

from local.simulator.jwt import TokenError, TokenIssuer


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_issued_token_verifies_with_subject():
    issuer = TokenIssuer(ttl_seconds=1200)

    claims = issuer.verify(issuer.issue("api_demo"))

    assert claims["sub"] == "api_demo"


def test_token_header_names_hs256():
    token = TokenIssuer(ttl_seconds=60).issue("api_demo")
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))

    assert header == {"alg": "HS256", "typ": "JWT"}


def test_token_exp_is_ttl_after_issue():
    before = time.time()
    token = TokenIssuer(ttl_seconds=1200).issue("api_demo")

    assert abs(_claims(token)["exp"] - (before + 1200)) < 2


def test_expired_token_rejected():
    issuer = TokenIssuer(ttl_seconds=0)
    token = issuer.issue("api_demo")

    with pytest.raises(TokenError, match="expired"):
        issuer.verify(token)


def test_expire_all_rejects_earlier_tokens():
    issuer = TokenIssuer(ttl_seconds=1200)
    token = issuer.issue("api_demo")
    issuer.expire_all()

    with pytest.raises(TokenError, match="expired"):
        issuer.verify(token)


def test_token_issued_after_expire_all_accepted():
    issuer = TokenIssuer(ttl_seconds=1200)
    issuer.expire_all()
    time.sleep(0.01)

    issuer.verify(issuer.issue("api_demo"))


def test_token_from_other_issuer_rejected():
    token = TokenIssuer(ttl_seconds=60).issue("api_demo")

    with pytest.raises(TokenError, match="signature"):
        TokenIssuer(ttl_seconds=60).verify(token)


def test_garbage_token_rejected():
    with pytest.raises(TokenError, match="not a JWT"):
        TokenIssuer(ttl_seconds=60).verify("not-a-token")
