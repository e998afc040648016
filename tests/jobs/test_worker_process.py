"""`churnsaver worker` as its own process on Redis: it relays the outbox and runs the jobs."""

import os
import subprocess
import sys
import uuid
from datetime import timedelta

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.jobs.models import FailedJob
from tests.fixtures.jobs import enqueue_committed, eventually, failed_jobs, outbox_rows, with_redis


async def test_a_worker_process_runs_jobs_committed_by_another_process(settings, db: Database):
    redis_settings = with_redis(settings)
    async with db.system_unit_of_work() as session:
        session.add(
            FailedJob(
                message_id=uuid.uuid4().hex,
                actor_name="tests.old",
                kwargs={},
                retries=3,
                error="RuntimeError: long ago",
                failed_at=utcnow() - timedelta(days=90),
            )
        )
    await enqueue_committed(db, "jobs.prune_dead_letters")

    env = {
        **os.environ,
        "CHURNSAVER_DATA_DIR": str(settings.data_dir),
        "CHURNSAVER_REDIS_URL": redis_settings.redis_url,
    }
    env.pop("CHURNSAVER_DATABASE_URL", None)
    if settings.database_url:
        env["CHURNSAVER_DATABASE_URL"] = settings.database_url
    worker = subprocess.Popen(
        [sys.executable, "-m", "churnsaver.backend.cli", "worker", "--threads", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def pruned_and_settled() -> bool:
            return not await failed_jobs(db) and not await outbox_rows(db)

        await eventually(pruned_and_settled, timeout=30)
    finally:
        worker.terminate()
        assert worker.wait(20) == 0  # SIGTERM is a clean shutdown
