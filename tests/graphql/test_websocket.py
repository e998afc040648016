"""GraphQL over WebSocket (graphql-transport-ws): authenticated in connection_init, tenant-bound."""

import json

import pytest
import websockets

from tests.fixtures.server import running_server

PROTOCOL = ["graphql-transport-ws"]


@pytest.fixture(scope="module")
def server_url(settings):
    with running_server(settings) as url:
        yield url.replace("http://", "ws://") + "/graphql"


async def exchange(url: str, init_payload: dict | None, query: str) -> list[dict]:
    async with websockets.connect(url, subprotocols=PROTOCOL) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": init_payload or {}}))
        ack = json.loads(await socket.recv())
        assert ack["type"] == "connection_ack", ack
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        messages = []
        while not messages or messages[-1]["type"] not in ("complete", "error"):
            messages.append(json.loads(await socket.recv()))
        return messages


async def test_a_query_over_websocket_returns_the_keys_tenant(server_url, tenant):
    messages = await exchange(
        server_url, {"authorization": f"Bearer {tenant.api_key}"}, "{ viewer { tenant { slug } } }"
    )

    assert messages[0]["payload"]["data"] == {"viewer": {"tenant": {"slug": tenant.tenant.slug}}}
    assert messages[-1]["type"] == "complete"


@pytest.mark.parametrize("payload", [{}, {"authorization": "Bearer cs_nope"}, {"authorization": "cs_no_scheme"}])
async def test_a_connection_without_a_valid_key_is_rejected(server_url, payload):
    async with websockets.connect(server_url, subprotocols=PROTOCOL) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()

    assert closed.value.rcvd.code == 4403  # Forbidden, as graphql-transport-ws specifies


@pytest.mark.parametrize(
    "variables", ['{"deep":' + "[" * 1000 + "]" * 1000 + "}", '{"s":"a\\u0000b"}', '{"s":"\\ud800"}', '{"n":1e400}']
)
async def test_a_message_the_edge_refuses_closes_the_socket_with_4400(server_url, tenant, variables):
    query = json.dumps("query($s: String) { customer(externalId: $s) { id } }")
    async with websockets.connect(server_url, subprotocols=PROTOCOL) as socket:
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {tenant.api_key}"}})
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(f'{{"id":"1","type":"subscribe","payload":{{"query":{query},"variables":{variables}}}}}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()

    assert closed.value.rcvd.code == 4400  # an invalid message, as graphql-transport-ws specifies
    messages = await exchange(server_url, {"authorization": f"Bearer {tenant.api_key}"}, "{ viewer { kind } }")
    assert messages[0]["payload"]["data"] == {"viewer": {"kind": "api_key"}}
