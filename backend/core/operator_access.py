"""Who may read the operator endpoints (`/metrics`): a caller with the metrics token, a client on
an allowed network, or, where neither is configured, loopback outside production."""

import hmac
from ipaddress import ip_address

from churnsaver.backend.core.config import Environment, Settings
from churnsaver.backend.core.middleware import json_error


def _on_allowed_network(host: str, settings: Settings) -> bool:
    try:
        address = ip_address(host)
    except ValueError:
        return False  # not an address (a Unix socket, a test client's name): on no network
    if not settings.metrics_token and not settings.metrics_allow:
        return address.is_loopback and settings.env is not Environment.production
    return any(address in network for network in settings.metrics_allow)


def _has_token(authorization: str | None, settings: Settings) -> bool:
    if not settings.metrics_token or authorization is None:
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.metrics_token.encode())


def metrics_refusal(host: str, authorization: str | None, settings: Settings) -> tuple[int, bytes] | None:
    """None when the caller may read the metrics; else the status and JSON body that refuse it."""
    if _has_token(authorization, settings) or _on_allowed_network(host, settings):
        return None
    if settings.metrics_token:
        return json_error(401, "UNAUTHENTICATED", "the metrics need Authorization: Bearer <metrics token>")
    reason = "metrics are not served to this address: set CHURNSAVER_METRICS_TOKEN or CHURNSAVER_METRICS_ALLOW"
    return json_error(403, "FORBIDDEN", reason)
