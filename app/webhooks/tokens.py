"""Webhook tokens: each company's hook carries its own `Authorization` value.

Procore signs nothing: it sends back, verbatim, the `Authorization` header configured on the
hook (FACTS.md §2). One value shared by every company's hook would let whoever holds it speak
for any company. So each company's hook carries its own token, derived from a secret:

    phk1.<company id>.<base64url(HMAC-SHA256(secret, "procore-hooks webhook v1" 0 <company id>))>

- The prefix names the company the token speaks for, so the receiver checks it before reading
  the body, and then refuses a body that names another company (Procore never sends that).
- WEBHOOK_AUTH_TOKENS is the list of secrets, newest first: hooks are written with the newest,
  and a token derived from any listed secret is accepted, so a secret rotates with no downtime
  (prepend, let the hooks sync rewrite every company's hook, then drop the old one).
- Procore masks the header to its last five characters in hook listings (FACTS.md §9): those
  come from the HMAC, so they differ between companies and between secrets.
- WEBHOOK_SHARED_TOKENS (opt-in, empty by default) lists literal values accepted for any
  company, for hooks made by hand; such a token proves nothing about the company it names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from app.settings import Settings

PREFIX = "phk1"
_INFO = b"procore-hooks webhook v1"
# A company id is a positive 64-bit integer: at most 19 digits.
_MAX_ID_DIGITS = 19


class NoWebhookSecret(RuntimeError):
    """WEBHOOK_AUTH_TOKENS is empty: no company token can be derived."""


def _mac(secret: bytes, company_id: int) -> str:
    digest = hmac.new(secret, _INFO + b"\x00" + str(company_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _token(secret: bytes, company_id: int) -> str:
    return f"{PREFIX}.{company_id}.{_mac(secret, company_id)}"


def hook_authorization(settings: Settings, company_id: int) -> str:
    """The `Authorization` value company `company_id`'s hook must carry (newest secret)."""
    secrets = settings.webhook_token_values
    if not secrets:
        raise NoWebhookSecret("WEBHOOK_AUTH_TOKENS is not set: webhook tokens cannot be made")
    return _token(secrets[0], company_id)


@dataclass(frozen=True, slots=True)
class Presented:
    """Who a valid `Authorization` value may speak for: one company, or any (shared token)."""

    company_id: int | None

    def allows(self, company_id: int) -> bool:
        return self.company_id is None or self.company_id == company_id


ANY_COMPANY = Presented(None)


class WebhookTokens:
    """The receiver's check, built once from the settings."""

    def __init__(self, settings: Settings) -> None:
        self._secrets = settings.webhook_token_values
        self._shared = [t.get_secret_value().encode() for t in settings.webhook_shared_tokens]

    def verify(self, header: bytes | None) -> Presented | None:
        """Who the header speaks for, or None when it is missing or wrong.

        Every comparison runs in constant time and none stops early, so the answer time says
        nothing about which secret (or how much of a token) matched.
        """
        if not header:
            return None
        company_id = _claimed_company(header)
        matched: Presented | None = None
        if company_id is not None:
            for secret in self._secrets:
                expected = _token(secret, company_id).encode()
                if hmac.compare_digest(header, expected) and matched is None:
                    matched = Presented(company_id)
        shared = False
        for token in self._shared:
            shared |= hmac.compare_digest(header, token)
        if matched is None and shared:
            matched = ANY_COMPANY
        return matched


def _claimed_company(header: bytes) -> int | None:
    prefix, _, rest = header.partition(b".")
    digits, _, mac = rest.partition(b".")
    if prefix != PREFIX.encode() or not mac:
        return None
    if not (0 < len(digits) <= _MAX_ID_DIGITS and digits.isdigit()) or digits.startswith(b"0"):
        return None
    company_id = int(digits)
    return company_id if company_id < 2**63 else None
