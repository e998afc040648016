"""The GraphQL endpoint: POST, GET and WebSocket (graphql-transport-ws), and the GraphiQL console.

HTTP requests arrive already authenticated by the app's middleware. A WebSocket authenticates
in `connection_init`, with `{"authorization": "Bearer <api key>"}` in its payload. The console (a GET
asking for HTML, outside production) is our own page over vendored assets (`console.py`), where
Strawberry's would load them from a CDN.
"""

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from churnsaver.backend.core.config import Environment, Settings
from churnsaver.backend.core.db import Database
from churnsaver.graphql.console import CONSOLE_CSP, CONSOLE_HTML
from churnsaver.graphql.context import Context
from churnsaver.graphql.schema import create_schema
from churnsaver.tenants.api_keys import InvalidApiKey, authenticate_api_key, bearer_token


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(
            create_schema(settings),
            graphql_ide="graphiql" if settings.env is not Environment.production else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.db = db
        self.settings = settings

    def parse_json(self, data: str | bytes) -> Any:
        """A JSON body must hold an object (a list is a batch, refused as such): anything else
        is the client's mistake, a 400, where the view would fail reading its `query`."""
        document = super().parse_json(data)
        if not isinstance(document, dict | list):
            raise HTTPException(400, 'the request body must be a JSON object: {"query": "..."}')
        return document

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(CONSOLE_HTML, headers={"content-security-policy": CONSOLE_CSP})

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        subject = request.scope.get("state", {}).get("auth_subject")
        return Context(db=self.db, settings=self.settings, subject=subject, request=request, response=response)

    async def on_ws_connect(self, context: Context) -> None:
        params = context.connection_params or {}
        header = params.get("authorization") or params.get("Authorization")
        if not isinstance(header, str):
            raise ConnectionRejectionError({"reason": "authentication required"})
        try:
            token = bearer_token(header)
            async with self.db.system_session() as session:
                authentication = await authenticate_api_key(session, token)
        except InvalidApiKey as error:
            raise ConnectionRejectionError({"reason": error.reason}) from None
        context.subject = authentication.subject
