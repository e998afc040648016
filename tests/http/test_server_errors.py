"""A 500, should one still happen, is a generic JSON error that keeps the request id and the
security headers, and the client's connection stays open for its next request (issue 18, finding 3).

No route of the app raises on purpose, so the test app puts a raising route behind the app's own
middleware list and exception handlers, served by uvicorn over a real socket."""

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from churnsaver.backend.app import App, create_app
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.middleware import JSON_CSP, SECURITY_HEADERS
from tests.fixtures.server import serving

SECRET = "SELECT secret_hash FROM api_keys"


async def fail(_request: Request) -> JSONResponse:
    raise RuntimeError(SECRET)


async def connection_port(request: Request) -> JSONResponse:
    assert request.client is not None
    return JSONResponse({"port": request.client.port})


def behind_the_app_middleware(settings: Settings) -> App:
    real = create_app(settings, run_jobs=False)
    app = App(
        routes=[Route("/fail", fail), Route("/port", connection_port)],
        middleware=real.user_middleware,
        exception_handlers=real.exception_handlers,
    )
    app.state.settings = settings
    app.state.db = real.state.db
    return app


async def test_a_500_keeps_its_headers_hides_the_error_and_the_connection_stays_open(settings: Settings):
    app = behind_the_app_middleware(settings)
    try:
        with serving(app) as url:
            async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1)) as client:
                before = (await client.get("/port")).json()["port"]
                failed = await client.get("/fail", headers={"x-request-id": "trace-500"})
                after = await client.get("/port")
    finally:
        await app.state.db.dispose()

    assert failed.status_code == 500
    assert failed.json() == {"error": {"code": "INTERNAL", "message": "internal server error"}}
    assert SECRET not in failed.text and "Traceback" not in failed.text
    assert failed.headers["x-request-id"] == "trace-500"
    for name, value in [*SECURITY_HEADERS, JSON_CSP]:
        assert failed.headers[name.decode()] == value.decode()
    assert after.status_code == 200
    assert after.json()["port"] == before, "the 500 closed the connection: the next request opened another"
