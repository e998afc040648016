"""`churnsaver serve` on the embedded default, as `make run` starts it: migrates, seeds, prints, serves."""

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from churnsaver.backend.demo import DEMO_CUSTOMERS
from tests.fixtures.server import free_port


@pytest.fixture
def served(tmp_path):
    port = free_port()
    env = {**os.environ, "CHURNSAVER_DATA_DIR": str(tmp_path), "CHURNSAVER_DEMO": "1"}
    for name in ("CHURNSAVER_DATABASE_URL", "CHURNSAVER_REDIS_URL", "CHURNSAVER_ENV"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "churnsaver.backend.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Seeding the demo tenant trains its models first: minutes, not seconds, on a busy machine.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("churnsaver serve did not come up")
        yield base, process, tmp_path
    finally:
        process.terminate()
        process.wait(10)


def test_serve_seeds_the_demo_tenant_prints_its_key_and_urls_and_the_key_queries_its_data(served):
    # One start for both: seeding the demo is most of a serve test's time.
    base, process, data_dir = served
    key = (data_dir / "demo_api_key").read_text()

    response = httpx.post(
        f"{base}/graphql",
        json={"query": "{ viewer { tenant { slug } } customers(first: 5) { totalCount } }"},
        headers={"Authorization": f"Bearer {key}"},
    )
    process.terminate()
    output = process.communicate(timeout=10)[0]

    assert response.json()["data"] == {
        "viewer": {"tenant": {"slug": "demo"}},
        "customers": {"totalCount": DEMO_CUSTOMERS},
    }
    assert (data_dir / "churnsaver.db").exists()
    assert (data_dir / "secret_key").exists()
    assert re.search(r"demo API key\s+(cs_\S+)", output).group(1) == key
    assert f"{base}/graphql" in output
    assert f"{base}/healthz" in output


SHUTDOWN_TIMEOUT_SECONDS = 1
# Requests get the timeout, then running jobs get it, then the jobs process a margin to exit.
STOPS_WITHIN_SECONDS = 2 * SHUTDOWN_TIMEOUT_SECONDS + 4


def start_serve(data_dir, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "CHURNSAVER_DATA_DIR": str(data_dir),
        "CHURNSAVER_DEMO": "1",
        "CHURNSAVER_SHUTDOWN_TIMEOUT_SECONDS": str(SHUTDOWN_TIMEOUT_SECONDS),
    }
    for name in ("CHURNSAVER_DATABASE_URL", "CHURNSAVER_REDIS_URL", "CHURNSAVER_ENV"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "churnsaver.backend.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def outbox(data_dir) -> list[tuple[str, bool]]:
    """(job, sent) for each outbox row due by now: a row stays until its job has finished (a job
    waiting for a later time, a campaign step's, is not counted). Empty before serve has migrated
    the database."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'churnsaver.db'}?mode=ro", uri=True)) as db:
            query = "SELECT actor_name, dispatched_at IS NOT NULL, not_before FROM outbox_jobs"
            rows = db.execute(query).fetchall()
    except sqlite3.OperationalError:  # no database file or no tables yet
        return []
    now = datetime.now(UTC)
    return [(name, bool(sent)) for name, sent, not_before in rows if not_before is None or _utc(not_before) <= now]


def _utc(stored: str) -> datetime:
    moment = datetime.fromisoformat(stored)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigterm_stops_serve_within_its_deadline_and_the_interrupted_job_runs_on_the_next_start(tmp_path):
    process = start_serve(tmp_path, free_port())
    try:
        # The demo's first scoring runs for seconds in the jobs process: stop while it is under way.
        wait_until(lambda: any(sent for _job, sent in outbox(tmp_path)), 120, "the demo's jobs to be sent")
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(30)
        stopped_after = time.monotonic() - stopping
    finally:
        process.kill()
        process.wait()

    # Once shut down, uvicorn re-raises the signal it caught: a supervisor sees a stop by SIGTERM.
    assert exit_code == -signal.SIGTERM
    assert stopped_after < STOPS_WITHIN_SECONDS, f"stopped after {stopped_after:.1f} s"
    left = outbox(tmp_path)
    assert left, "the demo's jobs finished before the stop: nothing was interrupted"
    assert not any(sent for _job, sent in left), f"unfinished jobs still marked sent: {left}"

    process = start_serve(tmp_path, free_port())
    try:
        wait_until(lambda: outbox(tmp_path) == [], 120, f"the interrupted jobs {left} to run again")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
