// Starts the GraphiQL console on the page GraphQLView serves at the GraphQL endpoint.
//
// A file rather than an inline script, so that the page's Content-Security-Policy can be
// `script-src 'self'`. It needs the globals of the vendored React, ReactDOM and GraphiQL bundles.
(function () {
  "use strict";

  var endpoint = window.location.pathname;
  var initialHeaders = '{\n  "Authorization": "Bearer "\n}';
  var initialQuery = [
    "# Paste your API key after \"Bearer \" in Headers below,",
    "# then run the query (the play button, or Ctrl-Enter).",
    "{",
    "  viewer {",
    "    tenant {",
    "      slug",
    "      name",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");
  var missingKey = {
    errors: [{ message: "No API key yet: paste it after Bearer in the Headers pane below, then run the query." }],
  };
  // Typing a key changes the headers on every keystroke; wait for a pause before reloading the schema.
  var keySettleMs = 400;

  function apiKey(headers) {
    var value = headers && (headers.Authorization || headers.authorization);
    return typeof value === "string" ? value.replace(/^Bearer\s*/i, "").trim() : "";
  }

  function parsedHeaders(text) {
    try {
      return JSON.parse(text || "{}");
    } catch (error) {
      return {};
    }
  }

  var post = GraphiQL.createFetcher({ url: endpoint });

  // Asks nothing of the server until there is a key, and says what is missing instead of a 401.
  function createFetcher() {
    return function fetcher(params, options) {
      return apiKey(options && options.headers) ? post(params, options) : Promise.resolve(missingKey);
    };
  }

  function Console() {
    var state = React.useState("");
    var key = state[0];
    var setKey = state[1];
    var timer = React.useRef(null);
    // A new fetcher for a new key makes GraphiQL load the schema (docs, completion) with it.
    var fetcher = React.useMemo(createFetcher, [key]);

    function onEditHeaders(text) {
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(function () {
        setKey(apiKey(parsedHeaders(text)));
      }, keySettleMs);
    }

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: initialQuery,
      defaultHeaders: initialHeaders,
      onEditHeaders: onEditHeaders,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      // An API key in localStorage would outlive the tab and be readable by any script here.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(Console));
})();
