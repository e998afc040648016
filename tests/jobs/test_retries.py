"""Failing jobs: retried with backoff, and dead-lettered (visible in the CLI) when retries run out."""

import asyncio
import itertools
import json

from typer.testing import CliRunner

from churnsaver.backend.cli import app as cli
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.jobs.worker import running_jobs
from tests.fixtures.jobs import enqueue_committed, eventually, failed_jobs, outbox_rows
from tests.jobs.sample_jobs import FAST_BACKOFF, record


async def test_a_failing_job_is_retried_with_backoff_and_succeeds_later(
    broker_settings: Settings, db: Database
) -> None:
    async with running_jobs(broker_settings, db, consume=True):
        await enqueue_committed(db, "tests.flaky", token="flaky", failures=2)

        await eventually(lambda: record.finished["flaky"] == 1)
        await eventually(lambda: _outbox_is_empty(db))

    attempts = record.attempts["flaky"]
    assert len(attempts) == 3
    waits = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert all(wait >= FAST_BACKOFF["min_backoff"].total_seconds() for wait in waits), waits
    assert await failed_jobs(db) == []


async def test_a_job_that_always_fails_ends_as_a_dead_letter_listed_by_the_cli(
    broker_settings: Settings, db: Database
) -> None:
    async with running_jobs(broker_settings, db, consume=True):
        await enqueue_committed(db, "tests.always_fails", token="doomed")

        await eventually(lambda: _has_dead_letter(db))
        await eventually(lambda: _outbox_is_empty(db))

    assert len(record.attempts["doomed"]) == 3  # the first attempt and max_retries=2 retries
    [dead] = await failed_jobs(db)
    assert dead.actor_name == "tests.always_fails"
    assert dead.kwargs == {"token": "doomed"}
    assert dead.retries == 2
    assert dead.error == "ValueError: cannot process doomed"

    listed = json.loads(await asyncio.to_thread(_cli_json, broker_settings, "jobs", "failed", "--json"))
    assert [(job["job"], job["message_id"], job["error"]) for job in listed] == [
        ("tests.always_fails", dead.message_id, "ValueError: cannot process doomed")
    ]


def _cli_json(settings: Settings, *args: str) -> str:
    """Run `churnsaver ARGS` against the test database; its JSON output."""
    env = {
        "CHURNSAVER_ENV": "test",
        "CHURNSAVER_DATA_DIR": str(settings.data_dir),
        "CHURNSAVER_DATABASE_URL": settings.database_url,  # None (unset) means the SQLite file
    }
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


async def _outbox_is_empty(db: Database) -> bool:
    return await outbox_rows(db) == []


async def _has_dead_letter(db: Database) -> bool:
    return bool(await failed_jobs(db))
