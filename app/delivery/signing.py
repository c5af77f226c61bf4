"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme").

A secret is `whsec_` + base64 of random bytes. Each delivery carries `webhook-id`,
`webhook-timestamp` (unix seconds, the time of this attempt) and `webhook-signature`: `v1,` +
base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}` with the decoded secret, one per secret in
use, separated by spaces (two while a rotated secret overlaps its successor).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

PREFIX = "whsec_"
# The specification asks for 24 to 64 random bytes.
SECRET_BYTES = 32


class InvalidSecret(ValueError):
    pass


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key(secret: str) -> bytes:
    if not secret.startswith(PREFIX):
        raise InvalidSecret("a signing secret starts with whsec_")
    try:
        raw = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("a signing secret is whsec_ + base64") from exc
    if not 24 <= len(raw) <= 64:
        raise InvalidSecret("a signing secret holds 24 to 64 bytes")
    return raw


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    message_id: str, timestamp: int, body: bytes, secrets_in_use: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in use (newest first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets_in_use
        ),
    }
