"""Signed links to a company's live state: the setup page link and the embedded-app key.

A company's state is never shown for a bare `?company_id=`: ids are small guessable numbers.

- Setup link: `/setup?company=31&expires=<unix>&sig=<HMAC-SHA256(company, expires)>`, issued
  by the admin API (`POST /admin/setup-links`) and valid for SETUP_LINK_TTL_SECONDS.
- Embed key: `<expires>.<HMAC-SHA256(company, expires)>`, pasted into the embedded app's
  configuration in Procore (a configurable field that Procore interpolates into the iframe
  URL along with `procore.company.id` / `procore.project.id`), valid EMBED_KEY_TTL_DAYS.

Keys: their own, one list each, newest first: SETUP_LINK_KEYS and EMBED_KEYS. Links are
signed with the newest key and verified against every listed key, so a key rotates with
overlap (prepend the new one; drop the old one when its links may go). Dropping a key revokes
every link or embed key it signed, and only those: setup links and embed keys are revoked
independently, and neither depends on ENCRYPTION_KEY (whose rotation re-encrypts tokens and
must not break an outstanding link). In development with no keys set, keys are derived from
ENCRYPTION_KEY with HKDF-SHA256 (a purpose label each); production requires both settings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.fields import id_from_text
from app.settings import Settings

SETUP_PATH = "/setup"
EMBEDDED_PATH = "/embedded"
# The configurable field an app owner declares on the embedded component; Procore fills it
# into the iframe URL from the company's configuration.
EMBED_FIELD = "procore_hooks_key"

_INFO = b"procore-hooks link signing v1"
_EMBED_INFO = b"procore-hooks embed key v1"


class LinksUnavailable(RuntimeError):
    """No signing key is configured, so no link can be signed."""


def _derived(settings: Settings, info: bytes) -> list[bytes]:
    return [
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
            key.get_secret_value().encode()
        )
        for key in settings.encryption_key
    ]


def _setup_keys(settings: Settings) -> list[bytes]:
    if settings.setup_link_keys:
        return [k.get_secret_value().encode() for k in settings.setup_link_keys]
    return _derived(settings, _INFO)


def _embed_keys(settings: Settings) -> list[bytes]:
    if settings.embed_keys:
        return [k.get_secret_value().encode() for k in settings.embed_keys]
    return _derived(settings, _EMBED_INFO)


def _mac(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _newest(keys: list[bytes], name: str) -> bytes:
    if not keys:
        raise LinksUnavailable(f"{name} (or ENCRYPTION_KEY) is not set: links cannot be signed")
    return keys[0]


def _matches(keys: list[bytes], signature: str, *parts: str) -> bool:
    # Every key is tried (no early exit), each in constant time.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(signature.encode(), _mac(key, *parts).encode())
    return matched


@dataclass(frozen=True, slots=True)
class SetupLink:
    url: str
    company_id: int
    expires_at: datetime


def setup_link(settings: Settings, company_id: int, *, now: float | None = None) -> SetupLink:
    expires = int((time.time() if now is None else now) + settings.setup_link_ttl_seconds)
    signature = _mac(
        _newest(_setup_keys(settings), "SETUP_LINK_KEYS"), "setup", str(company_id), str(expires)
    )
    query = urlencode({"company": company_id, "expires": expires, "sig": signature})
    return SetupLink(
        url=f"{settings.public_base_url.rstrip('/')}{SETUP_PATH}?{query}",
        company_id=company_id,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


class LinkCheck:
    """Why a presented link does not open a company's state (shown as a short note)."""

    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"


def verify_setup(
    settings: Settings, company: str, expires: str, signature: str, *, now: float | None = None
) -> int | str:
    """The company id of a valid setup link, or a LinkCheck reason."""
    if not (company or expires or signature):
        return LinkCheck.MISSING
    if not (_digits(company) and _digits(expires) and signature):
        return LinkCheck.INVALID
    if not _matches(_setup_keys(settings), signature, "setup", company, expires):
        return LinkCheck.INVALID
    if int(expires) < (time.time() if now is None else now):
        return LinkCheck.EXPIRED
    company_id = id_from_text(company)
    return LinkCheck.INVALID if company_id is None else company_id


def embed_key(settings: Settings, company_id: int, *, now: float | None = None) -> str:
    """The embedded app's key for a company: valid EMBED_KEY_TTL_DAYS from now."""
    expires = int((time.time() if now is None else now) + settings.embed_key_ttl_days * 86400)
    mac = _mac(_newest(_embed_keys(settings), "EMBED_KEYS"), "embed", str(company_id), str(expires))
    return f"{expires}.{mac}"


def verify_embed(
    settings: Settings, company: str, key: str, *, now: float | None = None
) -> int | None:
    """The company id of a valid, unexpired embed key, or None."""
    expires, _, mac = key.partition(".")
    if not (_digits(company) and _digits(expires) and mac):
        return None
    if not _matches(_embed_keys(settings), mac, "embed", company, expires):
        return None
    if int(expires) < (time.time() if now is None else now):
        return None
    return id_from_text(company)


def _digits(value: str) -> bool:
    """A decimal of at most 19 ASCII digits (a 64-bit id or a unix time)."""
    return 0 < len(value) <= 19 and value.isascii() and value.isdigit()


def embedded_url_template(settings: Settings) -> str:
    """What to enter as the embedded component's URL in the Developer Portal."""
    base = settings.public_base_url.rstrip("/")
    return (
        f"{base}{EMBEDDED_PATH}?company_id={{{{procore.company.id}}}}"
        f"&project_id={{{{procore.project.id}}}}&key={{{{{EMBED_FIELD}}}}}"
    )
