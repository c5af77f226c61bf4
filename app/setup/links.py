"""Signed links to a company's live state: the setup page link and the embedded-app key.

A company's state is never shown for a bare `?company_id=`: ids are small guessable numbers.

- Setup link: `/setup?company=31&expires=<unix>&sig=<HMAC-SHA256(company, expires)>`, issued
  by the admin API (`POST /admin/setup-links`) and valid for SETUP_LINK_TTL_SECONDS.
- Embed key: HMAC-SHA256 over the company id alone, without expiry, because it is pasted
  once into the embedded app's configuration in Procore (a configurable field that Procore
  interpolates into the iframe URL along with `procore.company.id` / `procore.project.id`).

Key: derived with HKDF-SHA256 from ENCRYPTION_KEY rather than from a setting of its own. The
service already requires that secret in production and already rotates it as a list, so a
dedicated signing secret would only add a variable to provision and rotate. HKDF with a
purpose label keeps the derived key independent of the Fernet key (a signature never exposes
anything about what encrypts the tokens). Links are signed with the newest key and verified
against every listed key, so rotating ENCRYPTION_KEY keeps issued links working until the old
key is dropped — which is then also how every outstanding link and embed key is revoked.
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

from app.settings import Settings

SETUP_PATH = "/setup"
EMBEDDED_PATH = "/embedded"
# The configurable field an app owner declares on the embedded component; Procore fills it
# into the iframe URL from the company's configuration.
EMBED_FIELD = "procore_hooks_key"

_INFO = b"procore-hooks link signing v1"


class LinksUnavailable(RuntimeError):
    """No ENCRYPTION_KEY is configured, so no link can be signed."""


def _keys(settings: Settings) -> list[bytes]:
    return [
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            key.get_secret_value().encode()
        )
        for key in settings.encryption_key
    ]


def _mac(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _newest_key(settings: Settings) -> bytes:
    keys = _keys(settings)
    if not keys:
        raise LinksUnavailable("ENCRYPTION_KEY is not set: links cannot be signed")
    return keys[0]


def _matches(settings: Settings, signature: str, *parts: str) -> bool:
    # Every key is tried (no early exit), each in constant time.
    matched = False
    for key in _keys(settings):
        matched |= hmac.compare_digest(signature.encode(), _mac(key, *parts).encode())
    return matched


@dataclass(frozen=True, slots=True)
class SetupLink:
    url: str
    company_id: int
    expires_at: datetime


def setup_link(settings: Settings, company_id: int, *, now: float | None = None) -> SetupLink:
    expires = int((time.time() if now is None else now) + settings.setup_link_ttl_seconds)
    signature = _mac(_newest_key(settings), "setup", str(company_id), str(expires))
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
    if not (company.isdigit() and expires.isdigit() and signature):
        return LinkCheck.INVALID
    if not _matches(settings, signature, "setup", company, expires):
        return LinkCheck.INVALID
    if int(expires) < (time.time() if now is None else now):
        return LinkCheck.EXPIRED
    return int(company)


def embed_key(settings: Settings, company_id: int) -> str:
    return _mac(_newest_key(settings), "embed", str(company_id))


def verify_embed(settings: Settings, company: str, key: str) -> int | None:
    if not (company.isdigit() and key):
        return None
    return int(company) if _matches(settings, key, "embed", company) else None


def embedded_url_template(settings: Settings) -> str:
    """What to enter as the embedded component's URL in the Developer Portal."""
    base = settings.public_base_url.rstrip("/")
    return (
        f"{base}{EMBEDDED_PATH}?company_id={{{{procore.company.id}}}}"
        f"&project_id={{{{procore.project.id}}}}&key={{{{{EMBED_FIELD}}}}}"
    )
