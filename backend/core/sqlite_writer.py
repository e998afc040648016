"""A thread that runs short synchronous units of work against the SQLite file, one at a time.

An async session reaches SQLite through aiosqlite, which runs each call on its connection's
thread and wakes the event loop with the result: a transaction of three statements is about ten
such round trips. For the receivers' group commits that cost twice SQLite's own work, and a web
process under a provider's burst spends its one core on it. Here a whole unit of work is one
round trip: a plain sqlite3 connection on a dedicated thread runs it from BEGIN to COMMIT.

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

# While a thread writes to SQLite beside busy Python code (the event loop, an import's parser),
# the GIL changes threads every half millisecond rather than every 5 ms. The writer lets go of
# it for each call into SQLite and needs it back after, while the busy thread holds it for up to
# an interval each time: at 5 ms a transaction's dozen calls waited for the GIL longer than
# SQLite took to run them.
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
