"""Instructions per signed Whop delivery, counted by callgrind: the app against the bare route.

Requests/s on a shared 2-core host swing by a tenth from one run to the next, more than most
changes to the receivers move them; an instruction count holds to 0.1%. So each of the two apps
(the real one, its jobs off, and the bench's bare Starlette route) is driven in a process of its
own under `valgrind --tool=callgrind`, through its ASGI callable (no uvicorn, no sockets), with
signed deliveries 64 at a time on a fresh SQLite database. Callgrind counts only the measured
round: the child switches it on and off around it with `callgrind_control`. What both runs
count alike (this driver, the event loop) is in both figures; the difference is the app's.

`python -m tests.bench.ingest.instructions [--deliveries N]` prints both and their ratio; the
ingest benchmark runs it as a section when valgrind is installed.
"""

import argparse
import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from churnsaver.backend.app import create_app
from churnsaver.backend.db import Database
from churnsaver.backend.ingest.models import Source
from tests.bench.ingest.apps import BARE_PATH, create_bare_app
from tests.bench.ingest.deliveries import signed, whop_envelopes
from tests.bench.server import REPO_ROOT
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.senders import SignedDelivery, create_webhook_target

IN_FLIGHT = 64
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


async def _post_all(app: Any, path: str, deliveries: list[SignedDelivery]) -> None:
    room = asyncio.Semaphore(IN_FLIGHT)

    async def one(delivery: SignedDelivery) -> int:
        async with room:
            return await _post(app, path, delivery)

    statuses = await asyncio.gather(*(one(delivery) for delivery in deliveries))
    if set(statuses) != {200}:
        raise SystemExit(f"deliveries were answered {sorted(set(statuses))}")


def _callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True, capture_output=True)


async def drive(which: str, deliveries: int) -> None:
    """The child: warm `which` up with as many deliveries as it measures, then measure."""
    with tempfile.TemporaryDirectory(prefix="churnsaver-bench-instructions-") as data_dir:
        async with migrated_database("sqlite", Path(data_dir)) as settings:
            db = Database(settings)
            tenant = await create_tenant_with_key(db, name="Instructions bench")
            target = await create_webhook_target(db, settings, tenant.id, Source.whop)
            await db.dispose()
            app = create_app(settings, run_jobs=False) if which == "app" else create_bare_app(settings)
            path = target.path if which == "app" else BARE_PATH.format(endpoint_id=target.endpoint_id)
            envelopes = whop_envelopes(2 * deliveries, members=2_000)
            async with app.router.lifespan_context(app):
                await _post_all(app, path, signed(target.secret, envelopes[:deliveries]))
                measured = signed(target.secret, envelopes[deliveries:])
                gc.collect()
                gc.freeze()  # the driver's own deliveries, out of the collector's sight as the app's start-up is
                _callgrind("on")
                await _post_all(app, path, measured)
                _callgrind("off")


def count(which: str, deliveries: int) -> int:
    """Instructions per delivery for `which` ("app" or "bare"), counted in a child under callgrind."""
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
        ]
        finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    collected = COLLECTED.search(finished.stderr)
    if finished.returncode != 0 or collected is None:
        raise RuntimeError(f"the {which} run under callgrind failed:\n{finished.stderr[-2000:]}")
    return round(int(collected[1]) / deliveries)


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def bench_instructions(deliveries: int) -> dict[str, Any]:
    app, bare = count("app", deliveries), count("bare", deliveries)
    return {"deliveries": deliveries, "app": app, "bare": bare, "ratio": round(bare / app, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.ingest.instructions", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--deliveries", type=int, default=1_000)
    parser.add_argument("--child", choices=["app", "bare"], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        asyncio.run(drive(arguments.child, arguments.deliveries))
        return
    if not available():
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    result = bench_instructions(arguments.deliveries)
    print(
        f"instructions per delivery: app {result['app']:,}, bare route {result['bare']:,}, "
        f"bare / app {result['ratio']:.3f}x ({result['deliveries']:,} deliveries each)"
    )


if __name__ == "__main__":
    main()
