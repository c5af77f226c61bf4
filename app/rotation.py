"""Key rotation of the secrets at rest: every encrypted column, re-encrypted under the newest
ENCRYPTION_KEY (`procore-hooks keys rotate`), so that the older keys can then be dropped.

The columns are listed here, once, from the models: Procore tokens of each credential, and
each destination's signing secrets. Each row is rewritten with a compare-and-swap in a short
transaction, a batch at a time: a value renewed meanwhile (refresh tokens rotate and are
single-use) is never overwritten with an older one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import LargeBinary, Table, and_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.crypto import InvalidToken, Vault
from app.models import Credential, Destination

# (table, its encrypted columns): every LargeBinary column of these models holds a Fernet token.
ENCRYPTED: tuple[tuple[Table, tuple[str, ...]], ...] = tuple(
    (
        model.__table__,  # type: ignore[misc]
        tuple(c.name for c in model.__table__.columns if isinstance(c.type, LargeBinary)),
    )
    for model in (Credential, Destination)
)


@dataclass(slots=True)
class Reencryption:
    """What `reencrypt` did, row by row."""

    seen: int = 0
    rotated: int = 0
    current: int = 0
    # Changed by a renewal while this ran (already under the key its writer had).
    changed_meanwhile: int = 0
    # No listed key opens a value: keep the old key until it is replaced. (table, id)
    unreadable: list[str] = field(default_factory=list)


async def reencrypt(
    engine: AsyncEngine,
    vault: Vault,
    *,
    batch: int = 100,
    progress: Callable[[str, Reencryption], None] | None = None,
) -> Reencryption:
    """Re-encrypt every encrypted column under the newest key, table by table; `progress` is
    told each table's counts as its batches go."""
    total = Reencryption()
    for table, columns in ENCRYPTED:
        done = Reencryption()
        await _table(engine, vault, table, columns, batch, done, progress)
        total.seen += done.seen
        total.rotated += done.rotated
        total.current += done.current
        total.changed_meanwhile += done.changed_meanwhile
        total.unreadable += done.unreadable
    return total


async def _table(
    engine: AsyncEngine,
    vault: Vault,
    table: Table,
    columns: tuple[str, ...],
    batch: int,
    report: Reencryption,
    progress: Callable[[str, Reencryption], None] | None,
) -> None:
    key = table.c.id
    after = 0
    while True:
        async with engine.begin() as conn:
            page = select(key, *(table.c[c] for c in columns)).where(key > after)
            rows = (await conn.execute(page.order_by(key).limit(batch))).all()
            for row in rows:
                report.seen += 1
                old = dict(zip(columns, row[1:], strict=True))
                present = [v for v in old.values() if v is not None]
                try:
                    if all(vault.is_current(v) for v in present):
                        report.current += 1
                        continue
                    new = {c: None if v is None else vault.rotate(v) for c, v in old.items()}
                except InvalidToken:
                    report.unreadable.append(f"{table.name} {row[0]}")
                    continue
                unchanged = [table.c[c].is_not_distinct_from(v) for c, v in old.items()]
                swapped = await conn.execute(
                    update(table).where(key == row[0], and_(*unchanged)).values(**new)
                )
                if swapped.rowcount:
                    report.rotated += 1
                else:
                    report.changed_meanwhile += 1
        if not rows:
            if progress is not None and report.seen:
                progress(table.name, report)
            return
        after = int(rows[-1][0])
        if progress is not None and len(rows) == batch:
            progress(table.name, report)
