"""Key rotation that works: `procore-hooks keys rotate` re-encrypts every stored secret under
the newest ENCRYPTION_KEY; setup links and embed keys have their own keys, rotated with
overlap; embed keys expire, and dropping their key revokes them."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text

from app.crypto import Vault
from app.models import Destination, DestinationState
from app.procore.tokens import TokenGrant, save_user_credential
from app.runtime import Runtime
from app.settings import Settings
from app.setup import links
from tests.conftest import ENCRYPTION_KEY, make_settings
from tests.test_cli import run_cli

NEW_KEY = Fernet.generate_key().decode()


async def store_credentials(runtime: Runtime, count: int) -> None:
    async with runtime.sessions() as session, session.begin():
        for n in range(count):
            await save_user_credential(
                session,
                runtime.vault,
                client_id="client",
                grant=TokenGrant(f"access-{n}", f"refresh-{n}", 5400),
                issued_at=time.time(),
                user_id=1000 + n,
                login=f"user{n}@example.test",
                label="test",
            )


async def store_destination(runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        session.add(
            Destination(
                url="https://connector.procore-hooks.test/hooks",
                secret_enc=runtime.vault.encrypt("whsec_current"),
                previous_secret_enc=runtime.vault.encrypt("whsec_previous"),
                state=DestinationState.OPEN,
            )
        )


async def destination_secrets(runtime: Runtime) -> tuple[bytes, bytes]:
    async with runtime.sessions() as session:
        row = (
            await session.execute(text("SELECT secret_enc, previous_secret_enc FROM destinations"))
        ).one()
        return bytes(row[0]), bytes(row[1])


async def stored(runtime: Runtime) -> list[tuple[bytes, bytes]]:
    async with runtime.sessions() as session:
        rows = await session.execute(
            text("SELECT access_token_enc, refresh_token_enc FROM credentials ORDER BY id")
        )
        return [(bytes(a), bytes(r)) for a, r in rows.all()]


async def test_keys_rotate_re_encrypts_every_stored_secret_with_progress(
    settings: Settings, db: Runtime
) -> None:
    await store_credentials(db, 5)  # under the current key
    await store_destination(db)
    env = {
        "DATABASE_URL": settings.database_url,
        "ENCRYPTION_KEY": f"{NEW_KEY},{ENCRYPTION_KEY}",
        "LOG_LEVEL": "WARNING",
    }
    result = await asyncio.to_thread(run_cli, "keys", "rotate", "--batch", "2", **env)
    assert result.returncode == 0, result.stderr
    assert "credentials: 2 seen, 2 re-encrypted" in result.stdout  # progress, batch by batch
    assert "credentials: 5 seen, 5 re-encrypted" in result.stdout
    assert "the older keys can be dropped" in result.stdout
    only_new = Vault([SecretStr(NEW_KEY)])
    values = await stored(db)
    assert [only_new.decrypt(a) for a, _ in values] == [f"access-{n}" for n in range(5)]
    assert [only_new.decrypt(r) for _, r in values] == [f"refresh-{n}" for n in range(5)]
    current, previous = await destination_secrets(db)  # the destinations' signing secrets too
    assert (only_new.decrypt(current), only_new.decrypt(previous)) == (
        "whsec_current",
        "whsec_previous",
    )
    assert "destinations: 1 seen, 1 re-encrypted" in result.stdout

    again = await asyncio.to_thread(run_cli, "keys", "rotate", **env)
    assert again.returncode == 0
    assert "all: 6 seen, 0 re-encrypted, 6 already under the newest key" in again.stdout


async def test_keys_rotate_reports_what_no_listed_key_opens(
    settings: Settings, db: Runtime
) -> None:
    await store_credentials(db, 1)
    env = {"DATABASE_URL": settings.database_url, "ENCRYPTION_KEY": NEW_KEY}
    result = await asyncio.to_thread(run_cli, "keys", "rotate", **env)
    assert result.returncode == 1
    assert "1 rows no listed key opens (credentials 1)" in result.stderr
    assert access_token_kept(await stored(db))


def access_token_kept(values: list[tuple[bytes, bytes]]) -> bool:
    return Vault([SecretStr(ENCRYPTION_KEY)]).decrypt(values[0][0]) == "access-0"


def test_links_do_not_depend_on_the_encryption_key(settings: Settings) -> None:
    signing = make_settings(
        settings.database_url, setup_link_keys="setup-key-1", embed_keys="embed-key-1"
    )
    link = links.setup_link(signing, 31)
    query = {k: v[0] for k, v in parse_qs(urlsplit(link.url).query).items()}
    key = links.embed_key(signing, 31)
    # ENCRYPTION_KEY rotated and the old one dropped: links and embed keys still work.
    rotated = signing.model_copy(update={"encryption_key": [SecretStr(NEW_KEY)]})
    assert links.verify_setup(rotated, query["company"], query["expires"], query["sig"]) == 31
    assert links.verify_embed(rotated, "31", key) == 31


def test_signing_keys_rotate_with_overlap_and_dropping_one_revokes(settings: Settings) -> None:
    old = make_settings(settings.database_url, setup_link_keys="s-old", embed_keys="e-old")
    both = make_settings(
        settings.database_url, setup_link_keys="s-new,s-old", embed_keys="e-new,e-old"
    )
    dropped_embed = make_settings(
        settings.database_url, setup_link_keys="s-new,s-old", embed_keys="e-new"
    )
    link = links.setup_link(old, 31)
    query = {k: v[0] for k, v in parse_qs(urlsplit(link.url).query).items()}
    args = (query["company"], query["expires"], query["sig"])
    key = links.embed_key(old, 31)
    assert links.verify_setup(both, *args) == 31
    assert links.verify_embed(both, "31", key) == 31
    assert links.embed_key(both, 31) != key
    # Embed keys revoked by dropping their key; setup links, signed with their own, live on.
    assert links.verify_embed(dropped_embed, "31", key) is None
    assert links.verify_setup(dropped_embed, *args) == 31
    # A key of one purpose is never accepted for the other.
    assert links.verify_embed(both, "31", query["sig"]) is None


def test_embed_keys_expire(settings: Settings) -> None:
    short = make_settings(settings.database_url, embed_keys="e", embed_key_ttl_days=1)
    key = links.embed_key(short, 31, now=time.time() - 2 * 86400)
    assert links.verify_embed(short, "31", key) is None
    fresh = links.embed_key(short, 31)
    assert links.verify_embed(short, "31", fresh) == 31
    assert links.verify_embed(short, "31", fresh, now=time.time() + 2 * 86400) is None
    assert links.verify_embed(short, "32", fresh) is None
