"""A thread that runs short synchronous units of work against the SQLite file, one at a time.

An async session reaches SQLite through aiosqlite, which runs each call on its connection's
thread and wakes the event loop with the result, about ten round trips for a short transaction
(docs/performance.md). Here a whole unit of work is one round trip: a plain sqlite3 connection
on a dedicated thread runs it from BEGIN to COMMIT.

The connection is the thread's own: opened there on first use and closed there. Waiting for
SQLite's write lock (the busy timeout) blocks this thread only, never the event loop.
"""

import asyncio
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# The GIL's switch interval while the writer thread works beside busy Python code (the event
# loop, an import's parser): the writer needs the GIL back after each call into SQLite, and at
# the default 5 ms it waited for it longer than SQLite took (docs/performance.md). Set only by the
# composition root (the app, the CLI's import), since it is the whole process's.
SWITCH_INTERVAL_SECONDS = 0.0005


@contextmanager
def switching_threads_often() -> Iterator[None]:
    """The GIL switched every `SWITCH_INTERVAL_SECONDS` within the block (the whole process)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class SQLiteWriter:
    def __init__(self, url: str, *, on_connect: Callable[[Engine], None], session_class: type[Session]) -> None:
        self._url = url
        self._on_connect = on_connect
        self._session_class = session_class
        self._thread: ThreadPoolExecutor | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    async def run(self, tenant_id: uuid.UUID, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction of `tenant_id`'s, committed when it returns."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, tenant_id, work)

    def _run(self, tenant_id: uuid.UUID, work: Callable[[Session], T]) -> T:
        if self._sessions is None:
            self._engine = create_engine(self._url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0)
            self._on_connect(self._engine)
            self._sessions = sessionmaker(self._engine, class_=self._session_class, expire_on_commit=False)
        with self._sessions() as session, session.begin():
            session.info["tenant_id"] = tenant_id
            return work(session)

    async def dispose(self) -> None:
        """Close the connection and end the thread; a later `run` starts them again."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._engine is not None:
            await asyncio.get_running_loop().run_in_executor(thread, self._engine.dispose)
            self._engine = self._sessions = None
        thread.shutdown(wait=False)
