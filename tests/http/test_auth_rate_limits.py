"""Failed authentication is throttled per client address and per key prefix: 429 with Retry-After,
counted in memory, or in Redis so that every web process shares the counts."""

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import websockets
from starlette.applications import Starlette

from churnsaver.backend.app import create_app
from churnsaver.backend.core.config import Settings
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.jobs import with_redis
from tests.fixtures.server import running_server

VIEWER = {"query": "{ viewer { kind } }"}


def wrong_key() -> str:
    return f"cs_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def a_wrong_secret_for(key: str) -> str:
    return f"{key[:16]}{secrets.token_urlsafe(32)}"


def an_address() -> str:
    return f"203.0.113.{secrets.randbelow(250) + 1}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def limited_app(settings: Settings, per_ip: str, per_key: str) -> AsyncIterator[Starlette]:
    app = create_app(
        settings.model_copy(update={"auth_failure_limit_per_ip": per_ip, "auth_failure_limit_per_key": per_key}),
        run_jobs=False,
    )
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_at(app: Starlette, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def statuses_from(app: Starlette, address: str, count: int, headers: dict[str, str] | None = None) -> list[int]:
    async with client_at(app, address) as client:
        return [(await client.post("/graphql", json=VIEWER, headers=headers)).status_code for _ in range(count)]


async def test_hammering_with_wrong_keys_gets_429_with_retry_after(settings, tenant: TenantWithKey):
    async with limited_app(settings, per_ip="5/minute", per_key="1000/minute") as app:
        async with client_at(app, "198.51.100.7") as attacker:
            answers = [(await attacker.post("/graphql", json=VIEWER, headers=bearer(wrong_key()))) for _ in range(8)]

            assert [answer.status_code for answer in answers] == [401] * 5 + [429] * 3
            refused = answers[-1]
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            assert refused.json()["error"]["code"] == "RATE_LIMITED"
            # A blocked address is refused before its key is looked at, even a valid one.
            assert (await attacker.post("/graphql", json=VIEWER, headers=tenant.headers)).status_code == 429

        async with client_at(app, "198.51.100.8") as someone_else:
            response = await someone_else.post("/graphql", json=VIEWER, headers=tenant.headers)

        assert response.status_code == 200
        assert response.json() == {"data": {"viewer": {"kind": "api_key"}}}


async def test_malformed_keys_count_as_failures(settings):
    async with limited_app(settings, per_ip="3/minute", per_key="1000/minute") as app:
        statuses = await statuses_from(app, an_address(), 4, bearer("nope"))

    assert statuses == [401, 401, 401, 429]


async def test_guessing_one_key_from_many_addresses_is_limited_per_prefix_but_its_owner_gets_in(
    settings, tenant: TenantWithKey
):
    async with limited_app(settings, per_ip="1000/minute", per_key="3/minute") as app:
        statuses = []
        for _ in range(5):
            async with client_at(app, an_address()) as guesser:
                answer = await guesser.post("/graphql", json=VIEWER, headers=bearer(a_wrong_secret_for(tenant.api_key)))
                statuses.append(answer.status_code)
        async with client_at(app, an_address()) as owner:
            response = await owner.post("/graphql", json=VIEWER, headers=tenant.headers)

    assert statuses == [401, 401, 401, 429, 429]
    assert response.status_code == 200


async def test_a_request_without_a_key_is_not_counted(settings):
    async with limited_app(settings, per_ip="2/minute", per_key="1000/minute") as app:
        statuses = await statuses_from(app, an_address(), 4)

    assert statuses == [401] * 4


async def test_two_app_instances_on_redis_share_the_count(settings, tenant: TenantWithKey):
    scaled_out = with_redis(settings)
    address = an_address()
    async with (
        limited_app(scaled_out, per_ip="4/minute", per_key="1000/minute") as first,
        limited_app(scaled_out, per_ip="4/minute", per_key="1000/minute") as second,
    ):
        async with client_at(first, address) as via_first:
            first_statuses = [
                (await via_first.post("/graphql", json=VIEWER, headers=bearer(wrong_key()))).status_code
                for _ in range(4)
            ]
        async with client_at(second, address) as via_second:
            refused = await via_second.post("/graphql", json=VIEWER, headers=bearer(wrong_key()))

    assert first_statuses == [401] * 4
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


async def websocket_acknowledged(url: str, authorization: str) -> bool:
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": authorization}}))
        try:
            return json.loads(await socket.recv())["type"] == "connection_ack"
        except websockets.ConnectionClosed:
            return False


async def test_failed_websocket_handshakes_count_too(settings, tenant: TenantWithKey):
    limited = settings.model_copy(update={"auth_failure_limit_per_ip": "3/minute"})
    with running_server(limited) as base_url:
        url = base_url.replace("http://", "ws://") + "/graphql"
        guesses = [await websocket_acknowledged(url, f"Bearer {wrong_key()}") for _ in range(4)]
        # The address is now blocked: even the right key is refused until the window frees.
        valid_after = await websocket_acknowledged(url, tenant.headers["Authorization"])

    assert guesses == [False] * 4
    assert valid_after is False
