"""Bearer tokens of the operator surfaces (admin API, metrics): check and fingerprint.

Tokens are lists (newest first) so one can be rotated with no downtime. Each presented value is
compared with every configured one in constant time, without stopping at the first match, so
the answer time says nothing about which token (or how much of one) matched.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr


def presented(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def matching(token: str | None, accepted: Sequence[SecretStr]) -> str | None:
    """The configured token equal to `token` (constant time over all of them), or None."""
    if not token:
        return None
    given = token.encode()
    found: str | None = None
    for candidate in accepted:
        value = candidate.get_secret_value()
        if hmac.compare_digest(given, value.encode()) and found is None:
            found = value
    return found


def fingerprint(token: str) -> str:
    """Names a token in audit rows and logs without revealing it: sha256, first 8 hex."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]
