"""Secrets at rest: tokens are stored encrypted with ENCRYPTION_KEY (MultiFernet).

ENCRYPTION_KEY is a list, newest first: new values are encrypted with the first key, and any
listed key decrypts, so a key is rotated by prepending the new one, re-encrypting every stored
value (`procore-hooks keys rotate`: app.rotation, with `Vault.rotate`), then dropping the old
one.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

__all__ = ["InvalidToken", "Vault", "VaultUnavailable"]


class VaultUnavailable(RuntimeError):
    """No ENCRYPTION_KEY is configured, so no token can be stored or read."""


class Vault:
    def __init__(self, keys: Sequence[SecretStr]) -> None:
        fernets = [Fernet(key.get_secret_value().encode()) for key in keys]
        self._fernet = MultiFernet(fernets) if fernets else None
        self._newest = fernets[0] if fernets else None

    @property
    def ready(self) -> bool:
        return self._fernet is not None

    def encrypt(self, value: str) -> bytes:
        return self._require().encrypt(value.encode())

    def decrypt(self, value: bytes) -> str:
        """Raises `InvalidToken` when no configured key opens the value."""
        return self._require().decrypt(value).decode()

    def rotate(self, value: bytes) -> bytes:
        """Re-encrypt a stored value under the newest key."""
        return self._require().rotate(value)

    def is_current(self, value: bytes) -> bool:
        """Whether the newest key already opens `value` (nothing to re-encrypt)."""
        self._require()
        assert self._newest is not None
        try:
            self._newest.decrypt(value)
        except InvalidToken:
            return False
        return True

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise VaultUnavailable("ENCRYPTION_KEY is not set: tokens cannot be stored or read")
        return self._fernet
