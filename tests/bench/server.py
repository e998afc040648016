"""One uvicorn process serving a bench app on 127.0.0.1, as `churnsaver serve` would.

`python -m tests.bench.server PORT [APP]` serves the settings found in the `CHURNSAVER_*`
environment; `running_server` starts that process from the bench, waits until it answers, and
stops it; `running_worker` does the same for a `churnsaver worker` process. APP names one of
`APPS`: the foundation bench app (the default), the real app with its jobs running (the ingest
and cases benches), or a bare Starlette endpoint (the ingest bench's baseline).
"""

import asyncio
import contextlib
import importlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from churnsaver.backend.core.config import Settings
from tests.fixtures.server import free_port

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15
# App name -> "module:factory"; a factory takes the Settings and returns the ASGI app.
APPS = {
    "foundation": "tests.bench.app:create_bench_app",
    "ingest": "tests.bench.ingest.apps:create_app_with_jobs",
    "ingest-without-jobs": "tests.bench.ingest.apps:create_app_without_jobs",
    "bare": "tests.bench.ingest.apps:create_bare_app",
}


@dataclass(frozen=True)
class RunningServer:
    pid: int
    base_url: str


class ServerFailed(Exception):
    """The server did not come up; the message ends with its last log lines (its directory is temporary)."""

    def __init__(self, reason: str, log_path: Path) -> None:
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        super().__init__("\n".join([reason, *tail]))


def server_environment(settings: Settings) -> dict[str, str]:
    """The caller's environment without its own CHURNSAVER_* settings, plus the bench database."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CHURNSAVER_")}
    environment |= {
        "CHURNSAVER_ENV": settings.env.value,
        "CHURNSAVER_DATA_DIR": str(settings.data_dir),
        "CHURNSAVER_LOG_LEVEL": settings.log_level,
    }
    if settings.database_url:
        environment["CHURNSAVER_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        environment["CHURNSAVER_REDIS_URL"] = settings.redis_url
    if settings.smtp_url:
        environment["CHURNSAVER_SMTP_URL"] = settings.smtp_url
    return environment


async def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_SECONDS
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=2) as client:
        while asyncio.get_running_loop().time() < deadline:
            if process.poll() is not None:
                raise ServerFailed(f"the bench server exited with {process.returncode}:", log_path)
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise ServerFailed(f"the bench server did not answer within {STARTUP_TIMEOUT_SECONDS}s:", log_path)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.asynccontextmanager
async def running_server(settings: Settings, app: str = "foundation") -> AsyncIterator[RunningServer]:
    port = free_port()
    log_path = settings.data_dir / f"server-{app}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.server", str(port), app],
            cwd=REPO_ROOT,
            env=server_environment(settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        base_url = f"http://{HOST}:{port}"
        await wait_until_healthy(base_url, process, log_path)
        yield RunningServer(pid=process.pid, base_url=base_url)
    finally:
        await asyncio.to_thread(stop, process)


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, threads: int = 4) -> AsyncIterator[int]:
    """`churnsaver worker` for `settings` (which name a Redis), as its own process; yields its pid.
    Ready once it says so: its relay and Dramatiq consumers are running."""
    log_path = settings.data_dir / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "churnsaver.backend.cli", "worker", "--threads", str(threads)],
            cwd=REPO_ROOT,
            env=server_environment(settings) | {"PYTHONUNBUFFERED": "1"},  # its "running" line, read below
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_SECONDS
        while b"worker running" not in log_path.read_bytes():
            if process.poll() is not None:
                raise ServerFailed(f"the worker exited with {process.returncode}:", log_path)
            if asyncio.get_running_loop().time() > deadline:
                raise ServerFailed(f"the worker did not start within {STARTUP_TIMEOUT_SECONDS}s:", log_path)
            await asyncio.sleep(0.2)
        yield process.pid
    finally:
        await asyncio.to_thread(stop, process)


def main() -> None:
    port = int(sys.argv[1])
    module, _, factory = APPS[sys.argv[2] if len(sys.argv) > 2 else "foundation"].partition(":")
    app = getattr(importlib.import_module(module), factory)(Settings())
    uvicorn.run(app, host=HOST, port=port, log_config=None, ws="websockets-sansio")


if __name__ == "__main__":
    main()
