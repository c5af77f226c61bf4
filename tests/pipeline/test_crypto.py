"""Tokens at rest: MultiFernet over ENCRYPTION_KEY, newest key first."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from app.crypto import InvalidToken, Vault, VaultUnavailable


def vault(*keys: bytes) -> Vault:
    return Vault([SecretStr(k.decode()) for k in keys])


def test_rotation_keeps_old_values_readable_and_rewrites_them_under_the_new_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    stored = vault(old).encrypt("refresh-token-value")
    rotated_vault = vault(new, old)
    assert rotated_vault.decrypt(stored) == "refresh-token-value"
    rewritten = rotated_vault.rotate(stored)
    assert vault(new).decrypt(rewritten) == "refresh-token-value"
    with pytest.raises(InvalidToken):
        vault(new).decrypt(stored)


def test_no_key_fails_loudly_naming_the_setting() -> None:
    empty = Vault([])
    assert not empty.ready
    with pytest.raises(VaultUnavailable, match="ENCRYPTION_KEY"):
        empty.encrypt("x")
