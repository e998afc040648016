"""The two apps the webhook benchmark serves: the real one with its jobs, and a bare baseline.

The baseline is the least a Python server can do for a webhook: a Starlette route that reads
the body and answers 200 with the same small JSON, no middleware, served by the same uvicorn
configuration. The real app is exactly what `churnsaver serve` runs on the embedded default:
its jobs process (outbox relay and Dramatiq worker, jobs/embedded.py) processes the inbox while
deliveries arrive.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from churnsaver.backend.app import create_app
from churnsaver.backend.core.config import Settings

BARE_PATH = "/bare/{endpoint_id}"


async def bare_receiver(request: Request) -> Response:
    await request.body()
    return JSONResponse({"received": True, "duplicate": False})


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_bare_app(_settings: Settings) -> Starlette:
    return Starlette(routes=[Route("/healthz", healthz), Route(BARE_PATH, bare_receiver, methods=["POST"])])


def create_app_with_jobs(settings: Settings) -> Starlette:
    return create_app(settings, run_jobs=True)


def create_app_without_jobs(settings: Settings) -> Starlette:
    """For a diagnostic run: what acknowledging costs when nothing else competes for the process."""
    return create_app(settings, run_jobs=False)
