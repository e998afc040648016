"""One SQLite writer at a time, handed over the moment the last one finishes.

SQLite lets one connection write at a time. A connection that finds the database locked sleeps
and tries again, backing off to 100 ms between tries (its busy handler): under load, the web
process storing webhooks and the jobs process applying them kept finding each other's lock and
slept through most of the time they waited, which showed as 100-400 ms acknowledgements.

So each unit of work on SQLite first takes this lock: an asyncio lock queues the tasks of one
process, and an exclusive `flock` on a file beside the database queues the processes (the
kernel wakes the next holder at once). Then SQLite's own lock is free whenever a unit of work
writes. Sessions outside a unit of work (reads, the GraphQL operation's session) do not take
it; if they write, SQLite's busy handler still keeps them correct, only slower.
"""

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


class SQLiteWriterLock:
    def __init__(self, database_path: Path) -> None:
        self._path = database_path.with_name(database_path.name + "-writer.lock")
        self._in_process = asyncio.Lock()
        self._fd: int | None = None

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        async with self._in_process:
            fd = self._file()
            await _lock(fd)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _file(self) -> int:
        if self._fd is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd


async def _lock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    # Held by another process: wait in a thread. A task cancelled meanwhile must not leave the
    # thread's lock behind, held by nobody: it is released as soon as the thread gets it.
    acquiring = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
    try:
        await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        acquiring.add_done_callback(lambda _done: fcntl.flock(fd, fcntl.LOCK_UN))
        raise
