"""Check the optional shared token in a callback URL.

The accepted tokens live in a Secrets Manager secret whose string is either a
JSON list of tokens or a single token. Several tokens can be accepted at once
so that a token can be rotated without rejecting callbacks in flight.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from skribble_receiver.errors import TokenRejected, TransientFailure

# Tokens are read again after this many seconds, so a rotated secret takes
# effect within five minutes without a deployment.
SECRET_MAX_AGE_SECONDS = 300
MIN_TOKEN_LENGTH = 16


class TokenVerifier:
    """Compares URL tokens with the tokens stored in one secret."""

    def __init__(self, secret_arn: str, secrets_client: Any) -> None:
        # Imported here because Powertools' parameters module imports boto3.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._secret_arn = secret_arn
        self._provider = SecretsProvider(boto3_client=secrets_client)

    def _accepted_tokens(self) -> list[bytes]:
        from aws_lambda_powertools.utilities.parameters import GetParameterError

        try:
            value = self._provider.get(self._secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
        except GetParameterError as exc:
            raise TransientFailure(
                "token_secret_unavailable",
                "The callback token secret could not be read. Retry later.",
            ) from exc
        text = value if isinstance(value, str) else str(value)
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        tokens = parsed if isinstance(parsed, list) else [parsed]
        accepted = [
            token.encode()
            for token in tokens
            if isinstance(token, str) and len(token) >= MIN_TOKEN_LENGTH
        ]
        if not accepted:
            # A misconfigured secret must not reject Skribble for good: 503
            # keeps the callback retried until an operator fixes the secret.
            raise TransientFailure(
                "token_secret_invalid",
                "The callback token secret contains no token of at least "
                f"{MIN_TOKEN_LENGTH} characters. Retry later.",
            )
        return accepted

    def verify(self, token: str | None) -> None:
        """Raise TokenRejected unless the token equals an accepted one."""
        if not token:
            raise TokenRejected(
                "token_missing",
                "The callback URL has no 'token' query parameter.",
            )
        presented = token.encode()
        # Compare with every accepted token, without stopping at a match, so
        # the time taken does not reveal which token or prefix matched.
        matched = False
        for accepted in self._accepted_tokens():
            matched |= hmac.compare_digest(presented, accepted)
        if not matched:
            raise TokenRejected(
                "token_mismatch", "The callback URL's token is not accepted."
            )
