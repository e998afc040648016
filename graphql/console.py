"""The GraphiQL console: the page GraphQLView serves to browsers, and the assets it loads.

Every asset is vendored under `static/graphiql/` (see the README there) and served by this app, so
the console works without internet access; its Content-Security-Policy lets it load nothing from
anywhere else, and run no inline script.
"""

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC_PATH = "/graphql/static"
ASSETS_URL = f"{STATIC_PATH}/graphiql"

CONSOLE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # GraphiQL's stylesheet embeds its fonts and icons as data: URLs.
        "font-src 'self' data:",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

CONSOLE_HTML = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Churn Saver GraphQL console</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="{ASSETS_URL}/graphiql.min.css">
    <link rel="stylesheet" href="{ASSETS_URL}/console.css">
  </head>
  <body>
    <div id="graphiql">Loading the console…</div>
    <script src="{ASSETS_URL}/react.production.min.js"></script>
    <script src="{ASSETS_URL}/react-dom.production.min.js"></script>
    <script src="{ASSETS_URL}/graphiql.min.js"></script>
    <script src="{ASSETS_URL}/console.js"></script>
  </body>
</html>
"""


def console_assets() -> Mount:
    """The console's assets at STATIC_PATH. They hold no data, so they load without a key."""
    # A directory, not StaticFiles(packages=...): churnsaver.graphql is a namespace package, with no
    # origin for Starlette to find it by.
    return Mount(STATIC_PATH, app=StaticFiles(directory=Path(__file__).parent / "static"), name="graphql-static")
