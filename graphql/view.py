"""The GraphQL endpoint: POST, GET and WebSocket (graphql-transport-ws), and the GraphiQL console.

HTTP requests arrive already authenticated by the app's middleware. A WebSocket authenticates
in `connection_init`, with `{"authorization": "Bearer <api key>"}` in its payload. The console (a GET
asking for HTML, outside production) is our own page over vendored assets (`console.py`), where
Strawberry's would load them from a CDN.
"""

import json
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.types import QueryParams
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from churnsaver.backend.core.accepted_json import UnacceptableInput, loads_accepted
from churnsaver.backend.core.config import Environment, Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.middleware import client_host
from churnsaver.backend.core.pubsub import Broker
from churnsaver.graphql.console import CONSOLE_CSP, CONSOLE_HTML
from churnsaver.graphql.context import Context
from churnsaver.graphql.errors import is_request_error
from churnsaver.graphql.media_types import GRAPHQL_RESPONSE_JSON, prefers_graphql_response
from churnsaver.graphql.schema import create_schema
from churnsaver.tenants.api_keys import InvalidApiKey
from churnsaver.tenants.key_authentication import KeyAuthenticator, TooManyFailures


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, db: Database, settings: Settings, authenticator: KeyAuthenticator, broker: Broker) -> None:
        super().__init__(
            create_schema(settings),
            graphql_ide="graphiql" if settings.env is not Environment.production else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.db = db
        self.settings = settings
        self.authenticator = authenticator
        self.broker = broker  # where subscriptions listen

    def parse_json(self, data: str | bytes) -> Any:
        """A JSON body must hold an object (a list is a batch, refused as such): anything else
        is the client's mistake, a 400, where the view would fail reading its `query`."""
        document = _loads_accepted_or_400(data)
        if not isinstance(document, dict | list):
            raise HTTPException(400, 'the request body must be a JSON object: {"query": "..."}')
        return document

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        if isinstance(request, Request) and prefers_graphql_response(request.headers.get("accept")):
            sub_response.media_type = GRAPHQL_RESPONSE_JSON
            request.state.graphql_response = sub_response  # process_result sets its status
        return sub_response

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """Answered as application/graphql-response+json, an operation that never ran (it did not
        parse, validate or coerce its variables) is a 400 without `data`, as the spec asks."""
        response_data = await super().process_result(request, result)
        sub_response = getattr(request.state, "graphql_response", None)
        if sub_response is not None and is_request_error(result.data, result.errors):
            sub_response.status_code = 400
            response_data.pop("data", None)
        return response_data

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        return response

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """A GET's `variables` and `extensions` are JSON held to the same definition as a body."""
        parsed: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if parsed.get(name):
                parsed[name] = _loads_accepted_or_400(parsed[name], name)
        return parsed

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket message (HTTP bodies go through `parse_json`): one the edge refuses is, to
        the protocol, not JSON, and closes the socket with 4400."""
        try:
            return loads_accepted(data)
        except UnacceptableInput as refusal:
            raise json.JSONDecodeError(str(refusal), data if isinstance(data, str) else "", 0) from None

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(CONSOLE_HTML, headers={"content-security-policy": CONSOLE_CSP})

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        subject = request.scope.get("state", {}).get("auth_subject")
        return Context(
            db=self.db, settings=self.settings, subject=subject, request=request, response=response, broker=self.broker
        )

    async def on_ws_connect(self, context: Context) -> None:
        params = context.connection_params or {}
        header = params.get("authorization") or params.get("Authorization")
        if not isinstance(header, str):
            raise ConnectionRejectionError({"reason": "authentication required"})
        try:
            authentication = await self.authenticator.authenticate(client_host(context.request.scope), header)
        except (InvalidApiKey, TooManyFailures) as error:
            raise ConnectionRejectionError({"reason": error.reason}) from None
        context.subject = authentication.subject


def _loads_accepted_or_400(data: str | bytes, field: str = "") -> Any:
    """JSON the edge accepts (backend/core/accepted_json.py): undecodable bytes, nesting a parser
    would recurse into, numbers and strings no store holds are refused before graphql-core sees them."""
    try:
        return loads_accepted(data, field)
    except UnacceptableInput as refusal:
        raise HTTPException(400, str(refusal)) from None
