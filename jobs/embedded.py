"""The embedded default's jobs, run by a child process of `churnsaver serve`.

Without Redis, `serve` starts one child process that runs what `churnsaver worker` runs with
Redis: the outbox relay, the scheduler and the Dramatiq worker, on the in-process broker. Why a
process and not threads beside the web server: Python runs one thread at a time per process, so
in-process jobs took their CPU from the acknowledgements (docs/performance.md, embedded jobs),
and the machine's other cores stayed idle. The child
has its own interpreter and core; it shares only the database with the web server, through
transactions, as separate worker processes always do.

The web server wakes the child's relay after every commit that enqueued jobs, through a pipe, so
a job starts at once rather than at the relay's next poll. The pipe also ties the child to its
parent: when the parent closes it (a graceful stop) or dies, the child stops its relay and
scheduler, lets running jobs finish within the shutdown timeout, marks what they left undone as
unsent in the outbox (jobs/worker.py), and exits; a child still running after that is killed. A child that
exits on its own (a crash) is logged and started again; nothing is lost meanwhile, since jobs
wait in the outbox until a relay sends them.

What the jobs publish for subscribers (core/pubsub.py: a case opened, say) comes back through a
second pipe, and the web server publishes it in-process, where the GraphQL subscriptions listen.
"""

import asyncio
import contextlib
import gc
import multiprocessing
import os
import signal
import threading
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import structlog

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.logging import configure_logging
from churnsaver.backend.core.pubsub import IN_PROCESS, ForwardingBroker, publishing_through
from churnsaver.jobs.outbox import on_commit_wake, wake_relays
from churnsaver.jobs.worker import running_jobs

logger = structlog.get_logger(__name__)

# Beyond the shutdown timeout its running jobs get, the child's time to close the database and exit.
CHILD_EXIT_MARGIN_SECONDS = 2.0
RESTART_DELAY_SECONDS = 1.0
START_TIMEOUT_SECONDS = 120
WAKE = b"w"


def _child_main(
    settings: Settings, wake_reader: Connection, ready_writer: Connection, events_writer: Connection
) -> None:
    """The child process: jobs until the parent closes the pipe or goes away."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when the child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.log_level)
    forwarding = ForwardingBroker(lambda channel, encoded: events_writer.send_bytes(forwarded_frame(channel, encoded)))
    try:
        with publishing_through(forwarding):
            asyncio.run(_run_jobs(settings, wake_reader, ready_writer))
    finally:
        forwarding.close()


def forwarded_frame(channel: str, encoded: str) -> bytes:
    return f"{channel}\n{encoded}".encode()


def publish_forwarded(events_reader: Connection) -> None:
    """In the parent, on a thread of its own: publish in-process what the child's jobs published,
    until the child closes its end."""
    try:
        while True:
            channel, _, encoded = events_reader.recv_bytes().decode().partition("\n")
            IN_PROCESS.publish_encoded(channel, encoded)
    except (EOFError, OSError):
        events_reader.close()


async def _run_jobs(settings: Settings, wake_reader: Connection, ready_writer: Connection) -> None:
    loop = asyncio.get_running_loop()
    parent_gone = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, parent_gone.set)
    fd = wake_reader.fileno()
    os.set_blocking(fd, False)

    def readable() -> None:
        try:
            woken = os.read(fd, 4096)
        except BlockingIOError:
            return
        if woken:
            wake_relays()
        else:  # end of file: the parent closed its end, or exited
            loop.remove_reader(fd)
            parent_gone.set()

    db = Database(settings)
    try:
        async with running_jobs(settings, db, consume=True):
            # As in the web process (app.py): what start-up loaded is frozen out of the garbage
            # collector's sight, so a full collection, which may fall inside a transaction that
            # holds SQLite's write lock, scans only what the jobs left behind.
            gc.freeze()
            loop.add_reader(fd, readable)
            ready_writer.send_bytes(b"ready")
            ready_writer.close()
            logger.info("jobs.child_started", pid=os.getpid())
            await parent_gone.wait()
    finally:
        await db.dispose()
    logger.info("jobs.child_stopped", pid=os.getpid())


class _Child:
    """The running child and the write end of its wake pipe."""

    def __init__(self, settings: Settings) -> None:
        self.stop_seconds = settings.shutdown_timeout_seconds + CHILD_EXIT_MARGIN_SECONDS
        context = multiprocessing.get_context("spawn")  # never fork a process that has threads
        reader, self.writer = context.Pipe(duplex=False)
        self.ready, ready_writer = context.Pipe(duplex=False)
        events_reader, events_writer = context.Pipe(duplex=False)
        # Daemonic: should this process exit without stopping it, multiprocessing terminates it.
        self.process: BaseProcess = context.Process(
            target=_child_main,
            args=(settings, reader, ready_writer, events_writer),
            name="churnsaver-jobs",
            daemon=True,
        )
        self.process.start()
        reader.close()
        ready_writer.close()
        events_writer.close()
        threading.Thread(target=publish_forwarded, args=(events_reader,), name="jobs-events", daemon=True).start()
        self._fd = self.writer.fileno()
        os.set_blocking(self._fd, False)

    def wake(self) -> None:
        # A full pipe already holds unread wake-ups: this one adds nothing.
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(self._fd, WAKE)

    async def stop(self) -> None:
        """Close the pipe (the child's signal to stop) and wait for it to exit."""
        self.writer.close()
        await asyncio.to_thread(self.process.join, self.stop_seconds)
        if self.process.is_alive():
            logger.error("jobs.child_stop_timeout", pid=self.process.pid)
            self.process.kill()
            await asyncio.to_thread(self.process.join)


class JobsProcess:
    """The child process running the jobs, started again whenever it dies."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._child = _Child(settings)

    async def started(self) -> bool:
        """Wait until the child runs its jobs (or exits); False if it took over START_TIMEOUT_SECONDS."""
        return await asyncio.to_thread(self._child.ready.poll, START_TIMEOUT_SECONDS)

    @property
    def pid(self) -> int | None:
        return self._child.process.pid

    def wake(self) -> None:
        self._child.wake()

    async def restart_when_it_dies(self) -> None:
        while True:
            await asyncio.to_thread(self._child.process.join)
            logger.error("jobs.child_exited", pid=self.pid, exitcode=self._child.process.exitcode)
            await asyncio.sleep(RESTART_DELAY_SECONDS)
            self._child.writer.close()
            self._child = _Child(self.settings)

    async def stop(self) -> None:
        await self._child.stop()


@contextlib.asynccontextmanager
async def jobs_in_child_process(settings: Settings) -> AsyncIterator[JobsProcess]:
    """Run the jobs in a child process for as long as the block runs."""
    jobs = JobsProcess(settings)
    unregister = on_commit_wake(jobs.wake)
    watcher = None
    try:
        # Started before the server answers: a job committed by its first request runs at once.
        if not await jobs.started():
            logger.warning("jobs.child_slow_start", timeout_seconds=START_TIMEOUT_SECONDS)
        watcher = asyncio.create_task(jobs.restart_when_it_dies())
        yield jobs
    finally:
        unregister()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await jobs.stop()
