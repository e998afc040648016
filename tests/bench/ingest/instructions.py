"""Instructions per signed Whop delivery, counted by callgrind: the app against the bare route.

Requests/s on a shared 2-core host swing by a tenth from one run to the next, more than most
changes to the receivers move them; an instruction count holds to 0.1%. So each of the two apps
(the real one, its jobs off, and the bench's bare Starlette route) is driven in a process of its
own under `valgrind --tool=callgrind`, through its ASGI callable (no uvicorn, no sockets), with
signed deliveries 64 at a time on a fresh SQLite database. Callgrind counts only the measured
round: the child switches it on and off around it with `callgrind_control`. What both runs
count alike (this driver, the event loop) is in both figures; the difference is the app's.

`python -m tests.bench.ingest.instructions [--deliveries N]` prints both and their ratio; the
ingest benchmark runs it as a section when valgrind is installed. `--backend postgres` counts
the app's process against PostgreSQL (CHURNSAVER_TEST_DATABASE_URL), whose own work is not
counted. Under callgrind the app runs tens of times slower while the database does not, so its
group commits hold more deliveries than at full speed; the count is given with the deliveries
per commit, and `--in-flight` (fewer deliveries at a time) shrinks the commits to price them:
at d deliveries per commit, a delivery costs its own part plus a d-th of a commit.
"""

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from churnsaver.backend.app import create_app
from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.group_commit import BATCH_DELIVERIES
from tests.bench.ingest.apps import BARE_PATH, create_bare_app
from tests.bench.ingest.deliveries import signed, whop_envelopes
from tests.bench.server import REPO_ROOT
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.senders import SignedDelivery, create_webhook_target

IN_FLIGHT = 64  # deliveries at a time, by default
COLLECTED = re.compile(r"Collected : (\d+)")
RUN_TIMEOUT_SECONDS = 600


async def _post(app: Any, path: str, delivery: SignedDelivery) -> int:
    """One delivery through `app`, as uvicorn would hand it over; its status. Not through httpx's
    ASGITransport, as the tests go: building an httpx request and response costs more than the
    bare route itself, and would count on both sides, hiding the difference."""
    headers = [(name.lower().encode(), value.encode()) for name, value in delivery.headers.items()]
    headers.append((b"content-length", str(len(delivery.body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": delivery.body, "more_body": False}]
    statuses = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


async def _post_all(app: Any, path: str, deliveries: list[SignedDelivery], in_flight: int) -> None:
    room = asyncio.Semaphore(in_flight)

    async def one(delivery: SignedDelivery) -> int:
        async with room:
            return await _post(app, path, delivery)

    statuses = await asyncio.gather(*(one(delivery) for delivery in deliveries))
    if set(statuses) != {200}:
        raise SystemExit(f"deliveries were answered {sorted(set(statuses))}")


def _callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True, capture_output=True)


async def drive(which: str, deliveries: int, backend: str, in_flight: int) -> None:
    """The child: warm `which` up with as many deliveries as it measures, then measure. Prints
    the measured round's deliveries per group commit (the app's) as JSON."""
    with tempfile.TemporaryDirectory(prefix="churnsaver-bench-instructions-") as data_dir:
        async with migrated_database(backend, Path(data_dir)) as settings:
            db = Database(settings)
            tenant = await create_tenant_with_key(db, name="Instructions bench")
            target = await create_webhook_target(db, settings, tenant.id, Source.whop)
            await db.dispose()
            app = create_app(settings, run_jobs=False) if which == "app" else create_bare_app(settings)
            path = target.path if which == "app" else BARE_PATH.format(endpoint_id=target.endpoint_id)
            envelopes = whop_envelopes(2 * deliveries, members=2_000)
            async with app.router.lifespan_context(app):
                await _post_all(app, path, signed(target.secret, envelopes[:deliveries]), in_flight)
                measured = signed(target.secret, envelopes[deliveries:])
                commits_before = _group_commits()
                gc.collect()
                gc.freeze()  # the driver's own deliveries, out of the collector's sight as the app's start-up is
                _callgrind("on")
                await _post_all(app, path, measured, in_flight)
                _callgrind("off")
                commits = _group_commits() - commits_before
    print(json.dumps({"deliveries_per_commit": round(deliveries / commits, 1) if commits else None}))


def _group_commits() -> float:
    """The group commits this process has made (the histogram's count)."""
    return next(sample.value for sample in BATCH_DELIVERIES.collect()[0].samples if sample.name.endswith("_count"))


def count(which: str, deliveries: int, backend: str = "sqlite", in_flight: int = IN_FLIGHT) -> dict[str, Any]:
    """Instructions per delivery for `which` ("app" or "bare"), counted in a child under
    callgrind, and the app's deliveries per group commit."""
    with tempfile.TemporaryDirectory(prefix="churnsaver-callgrind-") as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}/callgrind.out",
            sys.executable,
            "-m",
            "tests.bench.ingest.instructions",
            "--child",
            which,
            "--deliveries",
            str(deliveries),
            "--backend",
            backend,
            "--in-flight",
            str(in_flight),
        ]
        finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    collected = COLLECTED.search(finished.stderr)
    if finished.returncode != 0 or collected is None:
        raise RuntimeError(f"the {which} run under callgrind failed:\n{finished.stderr[-2000:]}")
    return {"instructions": round(int(collected[1]) / deliveries), **json.loads(finished.stdout.splitlines()[-1])}


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def bench_instructions(deliveries: int, backend: str = "sqlite", in_flight: int = IN_FLIGHT) -> dict[str, Any]:
    app, bare = (count(which, deliveries, backend, in_flight) for which in ("app", "bare"))
    return {
        "deliveries": deliveries,
        "backend": backend,
        "in_flight": in_flight,
        "app": app["instructions"],
        "bare": bare["instructions"],
        "ratio": round(bare["instructions"] / app["instructions"], 3),
        "deliveries_per_commit": app["deliveries_per_commit"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.ingest.instructions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--deliveries", type=int, default=1_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT, help="deliveries at a time")
    parser.add_argument("--child", choices=["app", "bare"], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        asyncio.run(drive(arguments.child, arguments.deliveries, arguments.backend, arguments.in_flight))
        return
    if not available():
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    result = bench_instructions(arguments.deliveries, arguments.backend, arguments.in_flight)
    print(
        f"instructions per delivery on {result['backend']}: app {result['app']:,}, bare route {result['bare']:,}, "
        f"bare / app {result['ratio']:.3f}x ({result['deliveries']:,} deliveries each, {result['in_flight']} at a "
        f"time; {result['deliveries_per_commit']} per group commit)"
    )


if __name__ == "__main__":
    main()
