"""GraphQL over HTTP's media types: which one a client's Accept header asks for."""

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def _weights(accept: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for media_range in accept.split(","):
        media_type, *parameters = (part.strip() for part in media_range.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media_type.lower()] = max(weight, weights.get(media_type.lower(), 0.0))
    return weights


def prefers_graphql_response(accept: str | None) -> bool:
    """Whether `accept` names application/graphql-response+json at least as high as application/json.
    No Accept, or only wildcards, is answered application/json, which every client reads."""
    if not accept:
        return False
    weights = _weights(accept)
    wanted = weights.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return wanted > 0 and wanted >= weights.get(JSON, 0.0)
