"""SQLite's WAL is written back into the file by a thread, not by the commit that crosses the mark."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, text

from boxoffice.platform.db import Database

metadata = MetaData()
rows = Table("rows", metadata, Column("id", Integer, primary_key=True), Column("body", String(2000)))


async def test_commits_leave_the_checkpoint_to_a_thread_which_does_it(tmp_path: Path) -> None:
    path = tmp_path / "service.db"
    db = Database(f"sqlite+aiosqlite:///{path}", name="checkpointed", sqlite_inline=True)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            # The writer connection never checkpoints (it did on the event loop at each 1,000-page mark).
            assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one() == 0
        size_before = path.stat().st_size
        for start in range(0, 3000, 500):  # ~6 MB: well past SQLite's 1,000-page (4 MB) mark
            async with db.uow() as uow:
                await uow.conn.execute(insert(rows), [{"id": i, "body": "x" * 2000} for i in range(start, start + 500)])
                await uow.commit()

        async def written_back() -> None:
            while path.stat().st_size < size_before + 4_000_000:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(written_back(), timeout=10)  # the checkpointer thread copied it into the file
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM rows"))).scalar_one() == 3000
    finally:
        await db.dispose()
